import Foundation
import RdKafka

/// The machine a run was measured on.
struct Machine: Codable {
    var cores: Int
    var memoryBytes: UInt64
    var librdkafka: String
    var system: String

    static var current: Machine {
        var name = utsname()
        uname(&name)
        let release = withUnsafeBytes(of: name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let machine = withUnsafeBytes(of: name.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return Machine(
            cores: ProcessInfo.processInfo.activeProcessorCount, memoryBytes: ProcessInfo.processInfo.physicalMemory,
            librdkafka: Librdkafka.version, system: "Linux \(release) \(machine)")
    }
}

/// What a scenario is compared with, measured in the same run.
struct Baseline: Codable {
    var name: String
    var figure: Double
    var figures: [String: Double]
}

/// One scenario's outcome: its headline figure against its baseline, every other figure,
/// the counts that must add up, and the settings it ran with.
struct ScenarioResult: Codable {
    var name: String
    var title: String
    /// The headline figure and its unit.
    var figure: Double
    var unit: String
    var figures: [String: Double]
    var baseline: Baseline
    /// `figure / baseline.figure`, or as `ratioMeaning` says.
    var ratio: Double
    var ratioMeaning: String
    /// Whether every event was done before the scenario's time limit.
    var completed: Bool
    var counts: [String: Int]
    var settings: [String: String]
    var gitRevision: String
    var machine: Machine
    var date: String
}

enum Report {
    static func gitRevision() -> String {
        func git(_ arguments: [String]) -> String? {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["git"] + arguments
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = FileHandle.nullDevice
            guard (try? process.run()) != nil else { return nil }
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else { return nil }
            return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        guard let revision = git(["rev-parse", "--short=12", "HEAD"]) else { return "unknown" }
        return (git(["status", "--porcelain", "--untracked-files=no"]) ?? "").isEmpty ? revision : revision + "-dirty"
    }

    static func format(_ value: Double) -> String {
        switch abs(value) {
        case 0: "0"
        case 1000...: String(format: "%.0f", value).reversed().enumerated()
            .map { $0.offset > 0 && $0.offset % 3 == 0 && $0.element != "-" ? "\($0.element)," : "\($0.element)" }.reversed().joined()
        case 10...: String(format: value.rounded() == value ? "%.0f" : "%.1f", value)
        case 0.01...: String(format: "%.3f", value)
        default: String(format: "%.2e", value)
        }
    }

    /// The table printed at the end of a run.
    static func table(_ results: [ScenarioResult]) -> String {
        var rows = [["scenario", "regen", "baseline", "ratio", "unit / ratio"]]
        for r in results {
            rows.append([
                r.title + (r.completed ? "" : " (time limit)"), format(r.figure), "\(format(r.baseline.figure)) (\(r.baseline.name))",
                format(r.ratio) + "×", "\(r.unit); \(r.ratioMeaning)",
            ])
        }
        let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.enumerated().map { index, row in
            let line = row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }
                .joined(separator: " | ")
            return index == 0 ? line + "\n" + widths.map { String(repeating: "-", count: $0) }.joined(separator: "-|-") : line
        }.joined(separator: "\n")
    }

    static func writeJSON(_ results: [ScenarioResult], to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try encoder.encode(results).write(to: URL(fileURLWithPath: path))
    }

    /// A line chart of events/s against concurrency, both axes logarithmic (so the ideal is a
    /// straight line), with the ideal line.
    static func scalingChart(levels: [Int], rates: [Double], title: String) -> String {
        let (width, height, left, right, top, bottom) = (720.0, 420.0, 80.0, 30.0, 50.0, 60.0)
        let ideal = levels.map { Double($0) * (rates.first ?? 0) }
        let positive = (rates + ideal).filter { $0 > 0 }
        let low = floor(log10(positive.min() ?? 1)), high = max(low + 1, ceil(log10(positive.max() ?? 10)))
        func x(_ index: Int) -> Double { left + (width - left - right) * Double(index) / Double(max(1, levels.count - 1)) }
        func y(_ value: Double) -> Double {
            height - bottom - (height - top - bottom) * (log10(max(value, pow(10, low))) - low) / (high - low)
        }
        func path(_ values: [Double]) -> String {
            values.enumerated().map { "\($0.offset == 0 ? "M" : "L")\(String(format: "%.1f", x($0.offset))),\(String(format: "%.1f", y($0.element)))" }
                .joined(separator: " ")
        }
        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(Int(width / 2))" y="24" text-anchor="middle" font-size="15">\(title)</text>

            """
        for decade in Int(low)...Int(high) {
            let value = pow(10, Double(decade))
            svg += "<line x1=\"\(left)\" x2=\"\(width - right)\" y1=\"\(y(value))\" y2=\"\(y(value))\" stroke=\"#ddd\"/>"
            svg += "<text x=\"\(left - 8)\" y=\"\(y(value) + 4)\" text-anchor=\"end\">\(format(value))</text>\n"
        }
        for (index, level) in levels.enumerated() {
            svg += "<text x=\"\(x(index))\" y=\"\(height - bottom + 18)\" text-anchor=\"middle\">\(level)</text>\n"
        }
        svg += """
            <text x="\(Int((left + width - right) / 2))" y="\(Int(height - 18))" text-anchor="middle">concurrency (events processed at once; 5 ms each)</text>
            <text transform="translate(18 \(Int(height / 2))) rotate(-90)" text-anchor="middle">events/s (log scale)</text>
            <path d="\(path(ideal))" fill="none" stroke="#999" stroke-dasharray="6 4" stroke-width="2"/>
            <path d="\(path(rates))" fill="none" stroke="#d62728" stroke-width="2.5"/>

            """
        for (index, rate) in rates.enumerated() {
            svg += "<circle cx=\"\(x(index))\" cy=\"\(y(rate))\" r=\"3.5\" fill=\"#d62728\"><title>\(levels[index]): \(format(rate)) events/s</title></circle>\n"
            svg += "<text x=\"\(x(index))\" y=\"\(y(rate) + 18)\" text-anchor=\"middle\" font-size=\"10\" fill=\"#d62728\">\(format(rate))</text>\n"
        }
        svg += """
            <rect x="\(left + 12)" y="\(top + 4)" width="250" height="44" fill="white" stroke="#ccc"/>
            <line x1="\(left + 22)" x2="\(left + 52)" y1="\(top + 18)" y2="\(top + 18)" stroke="#d62728" stroke-width="2.5"/>
            <text x="\(left + 60)" y="\(top + 22)">regen run (measured)</text>
            <line x1="\(left + 22)" x2="\(left + 52)" y1="\(top + 36)" y2="\(top + 36)" stroke="#999" stroke-dasharray="6 4" stroke-width="2"/>
            <text x="\(left + 60)" y="\(top + 40)">ideal: concurrency × rate at 1</text>
            </svg>

            """
        return svg
    }
}

extension Report {
    /// Time per cycle (bars, linear scale from 0) by the number of subjects in the store,
    /// each bar labelled with its cycle time, the files a cycle rendered and the time per file.
    static func rendersChart(subjects: [Int], cycleSeconds: [Double], fileSeconds: [Double], filesPerCycle: [Double], title: String) -> String {
        let (width, height, left, right, top, bottom) = (720.0, 420.0, 80.0, 30.0, 50.0, 60.0)
        let peak = max(cycleSeconds.max() ?? 1, 1e-3) * 1000
        let step = pow(10, floor(log10(peak)))
        let high = ceil(peak * 1.15 / step) * step
        let slot = (width - left - right) / Double(max(1, subjects.count))
        func y(_ ms: Double) -> Double { height - bottom - (height - top - bottom) * ms / high }
        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(Int(width / 2))" y="24" text-anchor="middle" font-size="14">\(title)</text>

            """
        for tick in stride(from: 0.0, through: high, by: step) {
            svg += "<line x1=\"\(left)\" x2=\"\(width - right)\" y1=\"\(y(tick))\" y2=\"\(y(tick))\" stroke=\"#ddd\"/>"
            svg += "<text x=\"\(left - 8)\" y=\"\(y(tick) + 4)\" text-anchor=\"end\">\(format(tick))</text>\n"
        }
        for (index, count) in subjects.enumerated() {
            let ms = cycleSeconds[index] * 1000
            let x = left + slot * (Double(index) + 0.2)
            svg += "<rect x=\"\(x)\" y=\"\(y(ms))\" width=\"\(slot * 0.6)\" height=\"\(y(0) - y(ms))\" fill=\"#1f77b4\">"
            svg += "<title>\(count) subjects: \(format(ms)) ms per cycle</title></rect>\n"
            svg += "<text x=\"\(x + slot * 0.3)\" y=\"\(y(ms) - 18)\" text-anchor=\"middle\">\(format(ms)) ms</text>\n"
            svg += "<text x=\"\(x + slot * 0.3)\" y=\"\(y(ms) - 5)\" text-anchor=\"middle\" font-size=\"10\" fill=\"#555\">"
            svg += "\(Int(filesPerCycle[index].rounded())) files, \(format(fileSeconds[index] * 1e6)) µs each</text>\n"
            svg += "<text x=\"\(x + slot * 0.3)\" y=\"\(height - bottom + 18)\" text-anchor=\"middle\">\(count)</text>\n"
        }
        svg += """
            <text x="\(Int((left + width - right) / 2))" y="\(Int(height - 18))" text-anchor="middle">subjects in the store (example templates, fsync on)</text>
            <text transform="translate(18 \(Int(height / 2))) rotate(-90)" text-anchor="middle">ms per cycle of 500 updates</text>
            </svg>

            """
        return svg
    }
}

/// Prints a line at once, also when standard output is a file (progress of a long run).
func say(_ text: String) {
    print(text)
    fflush(nil)
}
