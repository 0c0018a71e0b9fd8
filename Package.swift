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
        .library(name: "PosminiFuzzing", targets: ["PosminiFuzzing"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // The socket server (NIOPosix on a Unix domain socket).
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
        // Logging with levels that journald keeps.
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        // One service group for readers and server; SIGTERM and SIGHUP.
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        // System libraries: the build fails here, with the apt package to install, when they are missing.
        .systemLibrary(name: "CALSA", pkgConfig: "alsa", providers: [.apt(["libasound2-dev"])]),
        .systemLibrary(name: "CUdev", pkgConfig: "libudev", providers: [.apt(["libudev-dev"])]),
        // libcrypto (OpenSSL 3) for DUKPT: AES and DES-EDE3 blocks, AES-CMAC.
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),

        // Pure modules: no I/O, no logging.
        // Wiped, non-copyable buffers for clear card data and keys.
        .target(name: "Secrets", swiftSettings: strict),
        // The daemon's metrics: Prometheus's text exposition format, and what is counted (issue 25).
        .target(name: "PosminiMetrics", dependencies: ["PosminiProtocol", "SwipeDecoder", "Magstripe"], swiftSettings: strict),
        .target(name: "Magstripe", dependencies: ["Secrets"], swiftSettings: strict),
        .target(name: "AudioFile", swiftSettings: strict),
        .target(name: "SwipeSynth", dependencies: ["Magstripe"], swiftSettings: strict),
        // A second swipe model, built apart from SwipeSynth (issue 22): the decoder measured
        // against a world it was not tuned on.
        .target(name: "SwipePhysics", dependencies: ["Magstripe"], swiftSettings: strict),
        .target(name: "SwipeDecoder", dependencies: ["Magstripe", "Secrets", "AudioFile"], swiftSettings: strict),

        // The benchmark: accuracy grid, false accepts, throughput (release build).
        .target(name: "CMallocCounter"),
        .executableTarget(name: "posmini-bench",
                          dependencies: ["SwipeDecoder", "SwipeSynth", "SwipePhysics", "Magstripe", "AudioFile", "ReaderIO", "ReaderPipeline", "PosminiClient",
                                         "PosminiProtocol", "PosminiMetrics", "CMallocCounter"],
                          swiftSettings: strict),

        // DUKPT key derivation and track encryption, AES (X9.24-3) and TDES (X9.24-1) (pure).
        .target(name: "DUKPT",
                dependencies: ["Secrets", "COpenSSL"],
                swiftSettings: strict),

        // The socket protocol's messages, shared by daemon, clients and tests (pure).
        .target(name: "PosminiProtocol", swiftSettings: strict),
        // What the fuzz targets (Fuzz/, `make fuzz`) run, shared with the tests that replay seeds and regressions.
        .target(name: "PosminiFuzzing", dependencies: ["SwipeDecoder", "Magstripe", "AudioFile", "PosminiProtocol"], swiftSettings: strict),

        // System helpers without the hardware: whole-file reads and writes, safe path walking,
        // standard streams, process protection, threads and clocks (the tools use them too).
        .target(name: "CPosix"),
        .target(name: "PosminiSystem", dependencies: ["CPosix"], swiftSettings: strict),
        // The blocking control client of the socket (posminictl, tests): no NIO, no hardware.
        .target(name: "PosminiClient", dependencies: ["PosminiProtocol", "PosminiSystem"], swiftSettings: strict),
        // `decrypt` and the BDK input it shares with `provision`: no NIO, no hardware.
        .target(name: "PosminiDecrypt", dependencies: ["DUKPT", "Secrets", "PosminiProtocol", "PosminiSystem"], swiftSettings: strict),

        // The configuration file, shared by the daemon and its tools (no NIO, no hardware).
        .target(name: "PosminiConfig", dependencies: ["Magstripe", "DUKPT", "Secrets", "AudioFile", "PosminiSystem"], swiftSettings: strict),

        // The hardware edges.
        .target(name: "ReaderIO", dependencies: ["CALSA", "CUdev", "CPosix", "PosminiSystem", "AudioFile"], swiftSettings: strict),
        // The capture pipeline: a source, the ring and the decoders of one reader, on two threads
        // (the daemon, `listen` and the benchmark).
        .target(name: "ReaderPipeline", dependencies: ["ReaderIO", "SwipeDecoder", "Magstripe", "AudioFile", "PosminiProtocol"], swiftSettings: strict),

        // Wiring: sessions, server, key store, diagnose, the decode tool.
        .target(name: "PosminiDaemon",
                dependencies: ["Magstripe", "SwipeDecoder", "AudioFile", "ReaderIO", "ReaderPipeline", "PosminiProtocol", "PosminiConfig", "PosminiDecrypt",
                               "DUKPT", "Secrets", "CPosix", "SwipeSynth", "PosminiMetrics",
                               .product(name: "NIOCore", package: "swift-nio"),
                               .product(name: "NIOPosix", package: "swift-nio"),
                               .product(name: "Logging", package: "swift-log"),
                               .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")],
                swiftSettings: strict),

        // `posminid decode` and `posminid listen`: recordings and live capture to the terminal (no NIO).
        .target(name: "PosminiTools",
                dependencies: ["ReaderIO", "ReaderPipeline", "SwipeDecoder", "Magstripe", "AudioFile", "PosminiProtocol", "PosminiSystem",
                               "PosminiConfig", "PosminiDecrypt", "DUKPT", "Secrets"],
                swiftSettings: strict),

        // `posminid --diagnose`: the probes and the checks a technician runs (no NIO).
        .target(name: "PosminiDiagnose",
                dependencies: ["PosminiConfig", "PosminiClient", "PosminiProtocol", "PosminiSystem", "ReaderIO", "ReaderPipeline",
                               "SwipeDecoder", "Magstripe", "AudioFile"],
                swiftSettings: strict),

        // Executables: argument parsing and a call into the library.
        .executableTarget(name: "posminid",
                          dependencies: ["PosminiDaemon", "PosminiTools", "PosminiDiagnose", "PosminiConfig", "PosminiProtocol", "PosminiDecrypt", "ReaderIO", .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          swiftSettings: strict),

        .executableTarget(name: "posminictl",
                          dependencies: ["PosminiClient", "PosminiDecrypt", "PosminiProtocol", "PosminiSystem",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          swiftSettings: strict),

        // Helpers the test suites share (file reading, a seeded generator).
        .target(name: "TestSupport", dependencies: ["ReaderIO", "Secrets"], path: "Tests/TestSupport", swiftSettings: strict),

        .testTarget(name: "MagstripeTests", dependencies: ["Magstripe", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "AudioFileTests", dependencies: ["AudioFile", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "SwipePhysicsTests", dependencies: ["SwipePhysics", "SwipeDecoder", "Magstripe", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "SwipeSynthTests", dependencies: ["SwipeSynth", "Magstripe", "AudioFile", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "SwipeDecoderTests", dependencies: ["SwipeDecoder", "SwipeSynth", "Magstripe", "AudioFile", "TestSupport"],
                    swiftSettings: strict),
        .testTarget(name: "PosminiDaemonTests", dependencies: ["PosminiDaemon", "PosminiMetrics", "PosminiDiagnose", "PosminiConfig", "PosminiClient", "PosminiDecrypt", "PosminiSystem", "ReaderPipeline", "SwipeDecoder", "PosminiProtocol", "PosminiFuzzing", "DUKPT", "Secrets", "AudioFile", "Magstripe", "SwipeSynth", "TestSupport"],
                    swiftSettings: strict),
        .testTarget(name: "PosminiProtocolTests", dependencies: ["PosminiProtocol", "PosminiDaemon", .product(name: "NIOCore", package: "swift-nio"),
                                                                 .product(name: "NIOTestUtils", package: "swift-nio")],
                    swiftSettings: strict),
        .testTarget(name: "DUKPTTests", dependencies: ["DUKPT", "Secrets", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "ReaderIOTests", dependencies: ["ReaderIO", "ReaderPipeline", "SwipeDecoder", "SwipeSynth", "Magstripe", "AudioFile", "TestSupport"],
                    swiftSettings: strict),
    ],
    swiftLanguageModes: [.v6]
)
