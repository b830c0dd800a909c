import Foundation
import Orchestration
import Yams

/// Reads the configuration in layers: the file (YAML or JSON), then `REGEN_...`
/// environment variables, then `--set path=value` flags; later layers win.
///
/// An environment variable names a path with `__` between levels and `_` between words:
/// `REGEN_KAFKA__BOOTSTRAP_SERVERS` sets `kafka.bootstrapServers`,
/// `REGEN_ORCHESTRATOR__RETRY__MAX_ATTEMPTS` sets `orchestrator.retry.maxAttempts`.
/// Values are read as YAML scalars or lists (`8`, `true`, `[a, b]`, `text`).
public struct ConfigurationLoader: Sendable {
    /// Why the configuration could not be read.
    public struct LoadError: Error, Sendable, CustomStringConvertible {
        /// What went wrong, naming the file, variable or field.
        public var description: String
    }

    /// The environment to read `REGEN_...` variables from.
    public var environment: [String: String]

    /// Creates a loader reading the given environment.
    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.environment = environment
    }

    /// Loads, layers, decodes and validates.
    /// - Throws: `LoadError` for unreadable input or a wrongly typed field, and
    ///   `ConfigurationErrors` for values out of range; both name the field.
    public func load(file: String?, overrides: [String] = []) throws -> ServiceConfiguration {
        var tree = try file.map(readFile) ?? [:]
        for (path, value) in environmentOverrides() { Self.set(&tree, path: path, value: value) }
        for assignment in overrides {
            guard let equals = assignment.firstIndex(of: "=") else {
                throw LoadError(description: "--set '\(assignment)': expected path=value")
            }
            let path = Self.settingPath(String(assignment[..<equals]))
            Self.set(&tree, path: path, value: String(assignment[assignment.index(after: equals)...]))
        }
        var configuration = try decode(tree)
        configuration.warnings = try configuration.kafka.readSecretFiles()
        try configuration.validate()
        return configuration
    }

    private func readFile(_ path: String) throws -> [String: Any] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw LoadError(description: "cannot read configuration file '\(path)'")
        }
        do {
            guard let root = try Yams.load(yaml: text) else { return [:] }
            guard let tree = root as? [String: Any] else {
                throw LoadError(description: "\(path): the top level must be a mapping")
            }
            return tree
        } catch let error as LoadError {
            throw error
        } catch {
            throw LoadError(description: "\(path): not valid YAML or JSON: \(error)")
        }
    }

    /// `a.b.c` as ["a", "b", "c"]; after a `properties` level the rest is one key,
    /// since librdkafka property names contain dots (`kafka.properties.fetch.wait.max.ms`).
    static func settingPath(_ text: String) -> [String] {
        var path: [String] = []
        var rest = Substring(text)
        while let dot = rest.firstIndex(of: "."), path.last != "properties" {
            path.append(String(rest[..<dot]))
            rest = rest[rest.index(after: dot)...]
        }
        return path + [String(rest)]
    }

    /// `REGEN_A__B_C=v` as (["a", "bC"], "v").
    func environmentOverrides() -> [(path: [String], value: String)] {
        environment.keys.sorted().compactMap { name in
            guard name.hasPrefix("REGEN_"), name != "REGEN_TEST_LOG" else { return nil }
            let path = name.dropFirst("REGEN_".count).components(separatedBy: "__").map(Self.camelCase)
            return path.contains("") ? nil : (path, environment[name]!)
        }
    }

    static func camelCase(_ snake: String) -> String {
        let words = snake.lowercased().split(separator: "_")
        guard let first = words.first else { return "" }
        return String(first) + words.dropFirst().map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
    }

    /// Sets `value` at `path`. librdkafka properties (anything under `properties`) are
    /// strings; every other value is read as a YAML scalar or list.
    private static func set(_ tree: inout [String: Any], path: [String], value: String, isProperty: Bool = false) {
        guard let key = path.first else { return }
        if path.count == 1 {
            tree[key] = isProperty ? value : (try? Yams.load(yaml: value)).flatMap { $0 } ?? value
            return
        }
        var child = tree[key] as? [String: Any] ?? [:]
        set(&child, path: Array(path.dropFirst()), value: value, isProperty: isProperty || key == "properties")
        tree[key] = child
    }

    private func decode(_ tree: [String: Any]) throws -> ServiceConfiguration {
        let data = try JSONSerialization.data(withJSONObject: Self.jsonSafe(tree))
        do {
            return try JSONDecoder().decode(ServiceConfiguration.self, from: data)
        } catch let error as DecodingError {
            throw LoadError(description: DecodingProblem(error).description)
        }
    }

    /// YAML dates and other scalars JSON has no word for become strings.
    private static func jsonSafe(_ value: Any) -> Any {
        switch value {
        case let map as [String: Any]: map.mapValues(jsonSafe)
        case let list as [Any]: list.map(jsonSafe)
        case is String, is Int, is Double, is Bool, is NSNull: value
        default: "\(value)"
        }
    }
}

extension ServiceConfiguration {
    /// The configuration as pretty JSON with every secret replaced by `[redacted]`.
    public func redactedJSON() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let tree = try JSONSerialization.jsonObject(with: encoder.encode(self))
        let data = try JSONSerialization.data(withJSONObject: Self.redact(tree), options: [.prettyPrinted, .sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    private static func redact(_ value: Any, key: String = "") -> Any {
        switch value {
        // The command processor's variables: any of them may be a token.
        case let map as [String: Any] where key == "environment": return map.mapValues { _ in "[redacted]" }
        case let map as [String: Any]: return Dictionary(uniqueKeysWithValues: map.map { ($0.key, redact($0.value, key: $0.key)) })
        case let list as [Any]: return list.map { redact($0, key: key) }
        default:
            let name = key.lowercased()
            // A secret's file name is not a secret (saslPasswordFile shows where it is read from).
            let secret = (name.contains("password") || name.contains("secret") || name.hasSuffix("key.pem")) && !name.hasSuffix("file")
            return secret ? "[redacted]" : value
        }
    }
}
