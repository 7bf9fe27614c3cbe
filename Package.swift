// swift-tools-version:6.1
// Cyclorama: product photos into studio shots. Separate executables that talk over RabbitMQ,
// sharing the `Shared` module of message types. See docs/architecture.md.
import Foundation
import PackageDescription

/// OpenCV's compiler flags as pkg-config gives them (`opencv4`; Debian: `-I/usr/include/opencv4`),
/// read when the manifest is evaluated. SwiftPM's `.systemLibrary(pkgConfig:)` cannot carry them to
/// a C++ target without a module map of OpenCV's C++ headers, and it would link all ~60 of
/// OpenCV's libraries where three are used; so only the flags come from pkg-config.
let openCVFlags: [String] = {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["pkg-config", "--cflags", "opencv4"]
    let output = Pipe()
    process.standardOutput = output
    process.standardError = FileHandle.nullDevice
    do { try process.run() } catch { return ["-I/usr/include/opencv4"] }
    let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    let flags = text.split(whereSeparator: \.isWhitespace).map(String.init)
    return process.terminationStatus == 0 && !flags.isEmpty ? flags : ["-I/usr/include/opencv4"]
}()

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

/// Pixel loops (the engine's Swift stages, the quality scorer, the imaging tests' own references
/// and scores) are optimised in debug builds too: unoptimised Swift spends most of their time in
/// retain / release and generic metadata (a profile of the quality tests: 75 % in the Swift
/// runtime, 15 % in the model), so every test and `make up` that renders an image waited on it
/// (the imaging tests alone: 84 → 65 core-seconds with their own loops optimised). Debugging them
/// steps through optimised code.
let pixelLoopSettings: [SwiftSetting] = swiftSettings + [.unsafeFlags(["-O"], .when(configuration: .debug))]

let package = Package(
    name: "cyclorama",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "api-gateway", targets: ["ApiGateway"]),
        .executable(name: "prompt-service", targets: ["PromptService"]),
        .executable(name: "runpod-dispatcher", targets: ["RunPodDispatcher"]),
        .executable(name: "result-ingestor", targets: ["ResultIngestor"]),
        .executable(name: "settings-service", targets: ["SettingsService"]),
        .executable(name: "local-engine", targets: ["LocalEngine"]),
        .executable(name: "cyclorama", targets: ["CycloramaCLI"]),
        .executable(name: "broker-bench", targets: ["BrokerBench"]),
        .executable(name: "engine-bench", targets: ["EngineBench"]),
        .executable(name: "pipeline-bench", targets: ["PipelineBench"]),
        .executable(name: "batch-bench", targets: ["BatchBench"]),
        .executable(name: "chaos", targets: ["Chaos"]),
        .executable(name: "fuzz", targets: ["Fuzz"]),
        .executable(name: "runpod-stand-in", targets: ["RunPodStandInMain"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: ["FullFoundation"]),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"4.0.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/vapor/multipart-kit.git", from: "4.7.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    ],
    targets: [
        // MARK: C bridges
        .systemLibrary(
            name: "CRabbitMQ", path: "Shared/CRabbitMQ", pkgConfig: "librabbitmq",
            providers: [.apt(["librabbitmq-dev"])]),
        .systemLibrary(
            name: "CHiredis", path: "Shared/CHiredis", pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"])]),

        .systemLibrary(
            name: "CVips", path: "Shared/CVips", pkgConfig: "vips",
            providers: [.apt(["libvips-dev"])]),
        /// Plain C wrappers over libvips' variadic operations and a C API over OpenCV's dnn module.
        .target(
            name: "CImagingBridge", dependencies: ["CVips"], path: "Shared/CImagingBridge",
            cxxSettings: [.unsafeFlags(openCVFlags + ["-O2"])],
            linkerSettings: [
                .linkedLibrary("opencv_dnn"), .linkedLibrary("opencv_imgproc"),
                .linkedLibrary("opencv_core"), .linkedLibrary("openblas"), .linkedLibrary("stdc++"),
            ]),

        // MARK: Shared libraries
        /// The local engine's image pipeline: decode, watermark removal, segmentation, composite, shadow, upscale.
        .target(
            name: "Imaging",
            dependencies: [
                "CImagingBridge",
                // Only for the contract's words (framing, background, shadow) as pipeline settings.
                "Shared",
                // SHA-256 keys of the segmentation cache.
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Shared/Imaging", swiftSettings: pixelLoopSettings),
        /// The message contract: every command and event, routing names, validation.
        .target(name: "Shared", path: "Shared/Shared", swiftSettings: swiftSettings),
        /// Time: `Duration` in the units other APIs count in, the one backoff every retry loop uses, and
        /// the time limits (one that abandons a call stuck for ever rather than wait for it).
        .target(name: "Timing", path: "Shared/Timing", swiftSettings: swiftSettings),
        /// RunPod's serverless protocol (job object, statuses, policy, submission) and the local
        /// engine's input and output: the one model the dispatcher, the engine, the prompt-service and
        /// the tests' stand-in share.
        .target(name: "RunPod", dependencies: ["Shared", "Timing"], path: "Shared/RunPod", swiftSettings: swiftSettings),
        /// AMQP 0-9-1 over rabbitmq-c: connection, topology, confirmed publisher, consumer.
        .target(
            name: "Messaging",
            dependencies: [
                "CRabbitMQ", "Timing",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            path: "Shared/Messaging", swiftSettings: swiftSettings),
        /// A pooled Redis client over hiredis.
        .target(
            name: "Redis",
            dependencies: [
                "CHiredis", "Timing",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Shared/Redis", swiftSettings: swiftSettings),
        /// PostgreSQL: migrations, schema, settings and media repositories.
        .target(
            name: "Database",
            dependencies: [
                "Shared", "Timing",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Shared/Database", swiftSettings: swiftSettings),
        /// What every executable needs, without a client of any server: configuration, logging and
        /// metrics bootstrap, lifecycle, `/healthz` and `/metrics`, the JSON error shape,
        /// digests, image headers (`ImageSniffer`) and outbound address rules
        /// (`HostAllowList`). The local engine needs nothing more.
        .target(
            name: "ServiceCore",
            dependencies: [
                "Timing",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Shared/ServiceCore", swiftSettings: swiftSettings),
        /// What the services on the broker share: the host (broker, Redis, PostgreSQL), the message
        /// consumer and topology, the settings client, ending a job, media files and signed links,
        /// secrets, the outage rules.
        .target(
            name: "ServiceSupport",
            dependencies: [
                "ServiceCore", "Shared", "Messaging", "Redis", "Database", "Timing",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "_ConnectionPoolModule", package: "postgres-nio"),
            ],
            path: "Shared/ServiceSupport", swiftSettings: swiftSettings),
        /// Outbound HTTP to hosts the `HostAllowList` rule cleared: a name is connected to at the
        /// address that was checked, never resolved again (the gateway's notifications, the
        /// ingestor's downloads, the engine's fetches and webhooks).
        .target(
            name: "OutboundHTTP",
            dependencies: ["ServiceCore", .product(name: "AsyncHTTPClient", package: "async-http-client")],
            path: "Shared/OutboundHTTP", swiftSettings: swiftSettings),

        // MARK: Executables
        .executableTarget(
            name: "ApiGateway",
            dependencies: [
                "ServiceCore", "ServiceSupport", "OutboundHTTP", "Database", "RunPod", "Imaging", "Timing",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "MultipartKit", package: "multipart-kit"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            path: "Services/api-gateway", resources: [.copy("Resources/openapi.json"), .copy("Resources/web")], swiftSettings: swiftSettings),
        .executableTarget(
            name: "PromptService", dependencies: ["ServiceCore", "ServiceSupport", "Database", "RunPod"],
            path: "Services/prompt-service", swiftSettings: swiftSettings),
        .executableTarget(
            name: "RunPodDispatcher",
            dependencies: [
                "ServiceCore", "ServiceSupport", "Database", "Messaging", "RunPod", "Imaging", "Timing",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            path: "Services/runpod-dispatcher", swiftSettings: swiftSettings),
        .executableTarget(
            name: "ResultIngestor",
            dependencies: [
                "ServiceCore", "ServiceSupport", "OutboundHTTP", "Imaging", "RunPod", "Timing",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            path: "Services/result-ingestor", swiftSettings: swiftSettings),
        .executableTarget(
            name: "SettingsService", dependencies: ["ServiceCore", "ServiceSupport"],
            path: "Services/settings-service", swiftSettings: swiftSettings),

        .executableTarget(
            name: "LocalEngine",
            dependencies: [
                "Imaging", "ServiceCore", "OutboundHTTP", "Shared", "RunPod", "Timing",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            path: "Services/local-engine", swiftSettings: swiftSettings),

        // MARK: Benchmarks
        // `cyclorama`, the command line over the public HTTP API (docs/cli.md).
        .executableTarget(
            name: "CycloramaCLI",
            dependencies: [
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            path: "Services/cyclorama-cli", swiftSettings: swiftSettings),

        .executableTarget(
            name: "BrokerBench",
            dependencies: ["Messaging", "CRabbitMQ", "Timing"],
            path: "Tests/Benchmarks/BrokerBench", swiftSettings: swiftSettings),
        .executableTarget(
            name: "PipelineBench", dependencies: ["TestSupport", "Messaging", "Shared", "Timing"],
            path: "Tests/Benchmarks/PipelineBench", swiftSettings: swiftSettings),
        .executableTarget(
            name: "BatchBench", dependencies: ["TestSupport", "Messaging", "Shared", "Timing"],
            path: "Tests/Benchmarks/BatchBench", swiftSettings: swiftSettings),
        .executableTarget(
            name: "EngineBench", dependencies: ["Imaging", "Shared"],
            path: "Tests/Benchmarks/EngineBench", swiftSettings: swiftSettings),

        // MARK: The fault suite (docs/reliability.md)
        /// Faults injected into a running system and the checker of I1–I7; used by FaultTests and `chaos`.
        .target(
            name: "FaultSuite",
            dependencies: [
                "TestSupport", "Database", "Messaging", "Shared", "ServiceCore", "Timing",
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            path: "Tests/FaultSuite", swiftSettings: swiftSettings),
        .executableTarget(
            name: "Chaos", dependencies: ["FaultSuite"],
            path: "Tests/Chaos", swiftSettings: swiftSettings),

        // MARK: Fuzzing (docs/security.md)
        /// Mutated and random inputs for every HTTP route with a body and every queue; used by
        /// SystemTests (a short run) and `fuzz` (`make fuzz`, the long one).
        .target(
            name: "FuzzSuite",
            dependencies: ["TestSupport", "Messaging", "Shared", .product(name: "NIOHTTP1", package: "swift-nio")],
            path: "Tests/FuzzSuite", swiftSettings: swiftSettings),
        .executableTarget(
            name: "Fuzz", dependencies: ["FuzzSuite"],
            path: "Tests/Fuzz", swiftSettings: swiftSettings),

        /// The tests' RunPod stand-in as a program (`make runpod-stand-in`), to try the RunPod
        /// backend by hand against `make up` without a RunPod account (README).
        .executableTarget(
            name: "RunPodStandInMain", dependencies: ["TestSupport"],
            path: "Tests/RunPodStandInMain", swiftSettings: swiftSettings),

        // MARK: Tests
        /// The imaging bridge's test hooks, declared out of its production header (defined in it).
        .target(name: "CImagingBridgeChecks", dependencies: ["CImagingBridge"], path: "Tests/CImagingBridgeChecks"),
        .target(
            name: "TestSupport",
            dependencies: [
                "ServiceCore", "ServiceSupport", "Database", "Shared", "Imaging", "Timing",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/TestSupport", swiftSettings: swiftSettings),
        .testTarget(
            name: "SharedTests", dependencies: ["Shared"],
            path: "Tests/SharedTests", resources: [.copy("Golden")], swiftSettings: swiftSettings),
        .testTarget(
            name: "MessagingTests", dependencies: ["Messaging", "Shared", "TestSupport"],
            path: "Tests/MessagingTests", swiftSettings: swiftSettings),
        .testTarget(
            name: "RedisTests", dependencies: ["Redis", "ServiceCore", "TestSupport"],
            path: "Tests/RedisTests", swiftSettings: swiftSettings),
        .testTarget(
            name: "DatabaseTests", dependencies: ["Database", "Shared", "TestSupport"],
            path: "Tests/DatabaseTests", swiftSettings: swiftSettings),
        .testTarget(
            name: "ImagingTests", dependencies: ["Imaging", "CImagingBridge", "CImagingBridgeChecks", "TestSupport"],
            path: "Tests/ImagingTests", swiftSettings: pixelLoopSettings),
        .testTarget(
            name: "LocalEngineTests",
            dependencies: [
                "LocalEngine", "Imaging", "Shared", "TestSupport", "RunPod",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            path: "Tests/LocalEngineTests", swiftSettings: swiftSettings),
        .testTarget(
            name: "ServiceTests",
            dependencies: [
                "TestSupport", "PromptService", "SettingsService", "RunPodDispatcher", "ResultIngestor", "ApiGateway", "Database", "ServiceCore", "ServiceSupport", "OutboundHTTP", "RunPod",
                "Imaging",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            path: "Tests/ServiceTests", swiftSettings: swiftSettings),
        .testTarget(
            name: "FaultTests",
            dependencies: [
                "FaultSuite", "TestSupport", "Database", "Timing", .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "_ConnectionPoolModule", package: "postgres-nio"),
            ],
            path: "Tests/FaultTests", swiftSettings: swiftSettings),
        .testTarget(
            name: "SystemTests",
            dependencies: [
                "TestSupport", "FuzzSuite", "Imaging", "Database", "Messaging", "Redis", "Shared", "ServiceSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            path: "Tests/SystemTests", swiftSettings: swiftSettings),
    ]
)
