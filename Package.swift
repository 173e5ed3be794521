// swift-tools-version: 6.0
import PackageDescription

/// Async functions that belong to no actor run on their caller's executor (SE-0461, the future
/// default) instead of hopping to the global one and back: on the intent path each such hop put
/// the task at the back of an event loop's queue (BENCHMARKS.md, bench/region).
let callerExecutor: [SwiftSetting] = [.enableUpcomingFeature("NonisolatedNonsendingByDefault")]

let package = Package(
    name: "dwcp",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "dwcp", targets: ["dwcp"]),
        .library(name: "Store", targets: ["Store"]),
        .library(name: "Query", targets: ["Query"]),
        .library(name: "Node", targets: ["Node"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
    ],
    targets: [
        // LMDB from the system (Debian: liblmdb-dev).
        .systemLibrary(name: "CLMDB", pkgConfig: "lmdb", providers: [.apt(["liblmdb-dev"])]),
        // CRC-32C with the SSE4.2 instruction (the Swift table version is the fallback).
        .target(name: "CChecksum"),
        // Sets the Swift runtime's global-executor hook, which a statically linked runtime does not export.
        .target(name: "CExecutorHook"),
        // Tells a fault in LMDB's code from the signal's context (LMDBFaultNote): GNU extensions, kept in C.
        .target(name: "CLMDBFault", dependencies: ["CLMDB"]),

        // Turns schema/*.sql into Swift string literals at build time, so the binary carries its schema.
        .executableTarget(name: "SchemaEmbedder", path: "Sources/SchemaEmbedder"),
        .plugin(name: "EmbedSchemaPlugin", capability: .buildTool(), dependencies: ["SchemaEmbedder"]),
        .target(name: "Schema", plugins: ["EmbedSchemaPlugin"]),
        // The git commit the binary was built at, for `dwcp --version` and every member's status.
        .executableTarget(name: "CommitEmbedder", path: "Sources/CommitEmbedder"),
        .plugin(name: "EmbedCommitPlugin", capability: .buildTool(), dependencies: ["CommitEmbedder"]),
        .target(name: "BuildInfo", plugins: ["EmbedCommitPlugin"]),

        // The KVM ioctls as C functions (Linux's own headers; nothing to install beyond libc's).
        .systemLibrary(name: "CKVM"),
        // Compiles guests/ with the toolchain's clang and lld; the plugin embeds the images.
        .executableTarget(name: "GuestBuilder", path: "Sources/GuestBuilder"),
        .plugin(name: "BuildGuestsPlugin", capability: .buildTool(), dependencies: ["GuestBuilder"]),
        // The virtual machine monitor: KVM microVMs, guest images, snapshots, the pre-warmed pool.
        .target(name: "Hypervisor", dependencies: ["CKVM", "CChecksum"], plugins: ["BuildGuestsPlugin"]),

        // The fleet log in LMDB, record types and codec, the view applier.
        .target(
            name: "Store",
            dependencies: [
                "CLMDB", "CLMDBFault", "CChecksum", "Schema",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: callerExecutor
        ),
        // Raft as a pure state machine, and the replication port's transport (TCP, or mutual TLS).
        .target(
            name: "Replication",
            dependencies: [
                "Store",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: callerExecutor
        ),
        // The deterministic region simulator: the product's Raft over a simulated network, clock and disk.
        .target(name: "Simulation", dependencies: ["Replication", "Store"], path: "Sources/Simulator"),
        .executableTarget(name: "dwcp-sim", dependencies: ["Simulation"]),
        // Placement: pure, state in, decision out.
        .target(name: "Scheduler"),
        // Read-only SQL over the views, result formats.
        .target(
            name: "Query",
            dependencies: ["Store", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        // The node: intent processing, apply loop, workers, HTTP API.
        .target(
            name: "Node",
            dependencies: [
                "Store", "Query", "Scheduler", "Hypervisor", "Replication", "BuildInfo",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: callerExecutor
        ),
        .executableTarget(
            name: "dwcp",
            dependencies: [
                "Node", "Query", "Store", "Replication", "CExecutorHook",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        // bench/store: the store benchmark with raw LMDB as its anchor, in one run.
        .executableTarget(
            name: "dwcp-bench-store",
            dependencies: [
                "ChildProcess", "Store", "Query", "Node", "CLMDB", .product(name: "GRDB", package: "GRDB.swift"),
            ],
            path: "bench/store"
        ),
        // bench/placement: placement quality against an exact solver, and placements/s.
        .executableTarget(
            name: "dwcp-bench-placement", dependencies: ["Scheduler"], path: "bench/placement",
            // The event-loop stall script is run by hand (BENCHMARKS.md), not part of the build.
            exclude: ["loop-stall.py"]),
        // bench/vm-start: VM start, pool start and snapshot restore, with QEMU as the anchor in the same run.
        .executableTarget(
            name: "dwcp-bench-vm-start",
            dependencies: [
                "ChildProcess", "Hypervisor", "Node", "Store", .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "bench/vm-start"
        ),
        // bench/region: small writes to a three-node region, with a three-node etcd as the anchor in the same run.
        .executableTarget(
            name: "dwcp-bench-region",
            dependencies: [
                "ChildProcess", .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "bench/region",
            // Scripts run by hand (BENCHMARKS.md), not part of the build.
            exclude: ["wire-breakdown.sh", "wire-breakdown.py", "recovery.py"]
        ),
        // Child processes started with posix_spawn, for the tests and the benches (not Foundation's
        // Process, whose run() crashes now and then on Linux: Sources/ChildProcess/SpawnedProcess.swift).
        .target(name: "ChildProcess", path: "Sources/ChildProcess"),
        // Helpers shared by the test targets (temporary directories, views as an earlier dwcp wrote them).
        .target(
            name: "TestSupport",
            dependencies: [
                "ChildProcess", "Schema", .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/TestSupport"),
        .testTarget(
            name: "StoreTests",
            dependencies: [
                "Store", "Schema", "TestSupport", .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ]),
        .testTarget(name: "SchedulerTests", dependencies: ["Scheduler"]),
        .testTarget(
            name: "ReplicationTests",
            dependencies: [
                "ChildProcess", "Replication", "Simulation", "Store", "TestSupport",
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]),
        .testTarget(name: "HypervisorTests", dependencies: ["Hypervisor", "TestSupport"]),
        .testTarget(name: "QueryTests", dependencies: ["Query", "Store", "TestSupport"]),
        .testTarget(
            name: "DwcpTests",
            dependencies: [
                "dwcp", "TestSupport", .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
            ]),
        .testTarget(
            name: "NodeTests",
            dependencies: [
                "ChildProcess", "Node", "Store", "Query", "Scheduler", "Hypervisor", "Replication", "TestSupport",
                "Schema",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
