// swift-tools-version: 6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "posminid",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Magstripe", targets: ["Magstripe"]),
        .library(name: "SwipeSynth", targets: ["SwipeSynth"]),
        .library(name: "AudioFile", targets: ["AudioFile"]),
        .library(name: "SwipeDecoder", targets: ["SwipeDecoder"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // System libraries: the build fails here, with the apt package to install, when they are missing.
        .systemLibrary(name: "CALSA", pkgConfig: "alsa", providers: [.apt(["libasound2-dev"])]),
        .systemLibrary(name: "CUdev", pkgConfig: "libudev", providers: [.apt(["libudev-dev"])]),

        // Pure modules: no I/O, no logging.
        .target(name: "Magstripe", swiftSettings: strict),
        .target(name: "AudioFile", swiftSettings: strict),
        .target(name: "SwipeSynth", dependencies: ["Magstripe"], swiftSettings: strict),
        .target(name: "SwipeDecoder", dependencies: ["Magstripe"], swiftSettings: strict),

        // The benchmark: accuracy grid, false accepts, throughput (release build).
        .target(name: "CMallocCounter"),
        .executableTarget(name: "posmini-bench",
                          dependencies: ["SwipeDecoder", "SwipeSynth", "Magstripe", "AudioFile", "ReaderIO", "CMallocCounter"],
                          swiftSettings: strict),

        // The hardware edges.
        .target(name: "CSystem"),
        .target(name: "ReaderIO", dependencies: ["CALSA", "CUdev", "CSystem", "SwipeDecoder", "AudioFile"], swiftSettings: strict),

        // Wiring: sessions, server, key store, diagnose, the decode tool.
        .target(name: "PosminiDaemon",
                dependencies: ["Magstripe", "SwipeDecoder", "AudioFile", "ReaderIO"],
                swiftSettings: strict),

        // Executables: argument parsing and a call into the library.
        .executableTarget(name: "posminid",
                          dependencies: ["PosminiDaemon", "ReaderIO", .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          swiftSettings: strict),

        // Helpers the test suites share (file reading, a seeded generator).
        .target(name: "TestSupport", dependencies: ["ReaderIO"], path: "Tests/TestSupport", swiftSettings: strict),

        .testTarget(name: "MagstripeTests", dependencies: ["Magstripe", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "AudioFileTests", dependencies: ["AudioFile", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "SwipeSynthTests", dependencies: ["SwipeSynth", "Magstripe", "AudioFile"], swiftSettings: strict),
        .testTarget(name: "SwipeDecoderTests", dependencies: ["SwipeDecoder", "SwipeSynth", "Magstripe", "AudioFile", "TestSupport"],
                    swiftSettings: strict),
        .testTarget(name: "PosminiDaemonTests", dependencies: ["PosminiDaemon", "AudioFile", "Magstripe", "SwipeSynth", "TestSupport"],
                    swiftSettings: strict),
        .testTarget(name: "ReaderIOTests", dependencies: ["ReaderIO", "SwipeDecoder", "SwipeSynth", "Magstripe", "AudioFile", "TestSupport"],
                    swiftSettings: strict),
    ],
    swiftLanguageModes: [.v6]
)
