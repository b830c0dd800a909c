// swift-tools-version:6.1
import PackageDescription

let strictSwift: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "regen",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "regen", targets: ["regen"]),
        .library(name: "RdKafka", targets: ["RdKafka"]),
        .library(name: "Orchestration", targets: ["Orchestration"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CRdKafka",
            pkgConfig: "rdkafka",
            providers: [.apt(["librdkafka-dev"]), .brew(["librdkafka"])]
        ),
        .target(
            name: "RdKafka",
            dependencies: [
                "CRdKafka",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSwift
        ),
        .target(
            name: "Orchestration",
            dependencies: [.product(name: "Logging", package: "swift-log")],
            swiftSettings: strictSwift
        ),
        .executableTarget(
            name: "regen",
            dependencies: [
                "RdKafka",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "RdKafkaTests",
            dependencies: ["RdKafka"],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "OrchestrationTests",
            dependencies: ["Orchestration"],
            swiftSettings: strictSwift
        ),
    ]
)
