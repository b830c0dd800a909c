import Foundation
import Logging
import Synchronization

/// How `regen run` writes its log lines.
public enum LogFormat: String, Sendable, Codable, Hashable, CaseIterable {
    /// swift-log's plain text, for a person at a terminal.
    case text
    /// One JSON object per line, for a log pipeline (``JSONLogHandler``).
    case json
}

/// A swift-log handler writing one JSON object per line: `timestamp` (RFC 3339, UTC,
/// milliseconds), `level`, `label`, `message`, then every metadata field (a field named
/// like one of those four is written as `metadata.NAME`). `trace_id` and `span_id` are
/// metadata fields like any other: the orchestrator sets them on the lines of an attempt
/// whose record carried a valid `traceparent`. Each line is one `write(2)`, so lines from
/// several threads never interleave.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    private let label: String
    private let output: Int32
    private static let reserved: Set<String> = ["timestamp", "level", "label", "message"]
    private static let lock = Mutex(())

    /// A handler writing to file descriptor `output` (standard error by default).
    public init(label: String, output: Int32 = STDERR_FILENO) {
        self.label = label
        self.output = output
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields: [String: Any] = [
            "timestamp": Self.timestamp(Date()), "level": event.level.rawValue, "label": label, "message": "\(event.message)",
        ]
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        for (key, value) in merged {
            fields[Self.reserved.contains(key) ? "metadata.\(key)" : key] = Self.json(value)
        }
        guard var line = try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
        line.append(UInt8(ascii: "\n"))
        Self.lock.withLock { _ in
            line.withUnsafeBytes { bytes in
                var offset = 0
                while offset < bytes.count {
                    let written = write(output, bytes.baseAddress! + offset, bytes.count - offset)
                    if written <= 0 { if errno == EINTR { continue } else { return } }
                    offset += written
                }
            }
        }
    }

    private static func json(_ value: Logger.Metadata.Value) -> Any {
        switch value {
        case .string(let text): text
        case .stringConvertible(let convertible): "\(convertible)"
        case .array(let values): values.map(json)
        case .dictionary(let entries): entries.mapValues(json)
        }
    }

    /// `2026-11-28T01:02:03.456Z`.
    static func timestamp(_ date: Date) -> String {
        let interval = date.timeIntervalSince1970
        var seconds = time_t(interval.rounded(.down))
        let milliseconds = Int((interval - Double(seconds)) * 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
            Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), min(999, milliseconds))
    }
}
