// swift-tools-version:6.1
// The change-event decoder under libFuzzer. A package of its own, because a fuzzer is
// built with `--sanitize fuzzer`, which the service must not be. Run them with `make fuzz`
// (round trips) and `make fuzz-diff` (against the Foundation-based reference decoder).
import PackageDescription

let package = Package(
    name: "regen-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: "regen", path: "..")],
    targets: [
        .executableTarget(
            name: "DecoderFuzzer",
            dependencies: [.product(name: "Orchestration", package: "regen")],
            swiftSettings: [.swiftLanguageMode(.v6)],
            // gold cannot link libFuzzer's main next to SwiftPM's renamed entry point.
            linkerSettings: [.unsafeFlags(["-use-ld=lld"])]
        ),
        .executableTarget(
            name: "DifferentialFuzzer",
            dependencies: [
                .product(name: "Orchestration", package: "regen"),
                .product(name: "DecoderOracle", package: "regen"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)],
            linkerSettings: [.unsafeFlags(["-use-ld=lld"])]
        ),
    ]
)
