// swift-tools-version:6.1
// libFuzzer targets for posminid (`make fuzz`). A package of its own: the targets link
// libFuzzer's driver, so they build only with `-sanitize=fuzzer` (see the Makefile).
import PackageDescription

let package = Package(
    name: "posminid-fuzz",
    dependencies: [.package(name: "posminid", path: "..")],
    targets: [
        .target(name: "CFuzzDriver"),
        .executableTarget(name: "fuzz-decoder", dependencies: ["CFuzzDriver", .product(name: "PosminiFuzzing", package: "posminid")]),
        .executableTarget(name: "fuzz-tracks", dependencies: ["CFuzzDriver", .product(name: "PosminiFuzzing", package: "posminid")]),
        .executableTarget(name: "fuzz-wav", dependencies: ["CFuzzDriver", .product(name: "PosminiFuzzing", package: "posminid")]),
        .executableTarget(name: "fuzz-protocol", dependencies: ["CFuzzDriver", .product(name: "PosminiFuzzing", package: "posminid")]),
    ],
    swiftLanguageModes: [.v6]
)
