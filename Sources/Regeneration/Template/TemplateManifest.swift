import Foundation
import Orchestration
import Yams

/// `manifest.yaml` of a templates directory: which artifacts exist, which template
/// renders each, and what each depends on.
public struct TemplateManifest: Sendable, Codable, Hashable {
    /// One output of the templates directory.
    public struct Artifact: Sendable, Codable, Hashable {
        /// Unique name, used in `dependsOn`.
        public var name: String
        /// Template file name without `.mustache`.
        public var template: String
        /// Output path under the output directory; `{{subject}}` makes one file per subject.
        public var output: String
        /// Glob patterns (`*`, `?`) of the subjects it uses; all subjects by default.
        public var subjects: [String]
        /// Change types that affect it; all by default.
        public var changeTypes: [ChangeType]?
        /// Artifacts it is built from: when one of them is affected, so is this one.
        public var dependsOn: [String]
        /// How values are escaped and the file validated; by default what the output's
        /// extension implies (see ``OutputFormat/implied(byPath:)``).
        public var format: OutputFormat?
        /// Splits an artifact over many subjects into pages of this many subjects, in
        /// subject order; its output names each page with `{{page}}` (1, 2, ...). A cycle
        /// re-renders only the pages whose subjects or membership changed.
        public var paginate: Int?

        /// The format it is rendered in: `format`, else what the output's extension implies.
        public var resolvedFormat: OutputFormat? { format ?? OutputFormat.implied(byPath: output) }

        /// Whether there is one file per subject.
        public var isPerSubject: Bool { output.contains("{{subject}}") }

        /// Whether its subjects are split into pages.
        public var isPaginated: Bool { paginate != nil }

        enum CodingKeys: String, CodingKey { case name, template, output, subjects, changeTypes, dependsOn, format, paginate }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            name = try c.decode(String.self, forKey: .name)
            template = try c.decode(String.self, forKey: .template)
            output = try c.decode(String.self, forKey: .output)
            subjects = try c.decodeIfPresent([String].self, forKey: .subjects) ?? ["*"]
            changeTypes = try c.decodeIfPresent([ChangeType].self, forKey: .changeTypes)
            dependsOn = try c.decodeIfPresent([String].self, forKey: .dependsOn) ?? []
            if let name = try c.decodeIfPresent(String.self, forKey: .format) {
                guard let format = OutputFormat(rawValue: name) else {
                    throw DecodingError.dataCorruptedError(
                        forKey: .format, in: c,
                        debugDescription: "format '\(name)' is not one of \(OutputFormat.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                self.format = format
            }
            paginate = try c.decodeIfPresent(Int.self, forKey: .paginate)
        }

        /// Creates an artifact description.
        public init(
            name: String, template: String, output: String, subjects: [String] = ["*"], changeTypes: [ChangeType]? = nil,
            dependsOn: [String] = [], format: OutputFormat? = nil, paginate: Int? = nil
        ) {
            self.name = name
            self.template = template
            self.output = output
            self.subjects = subjects
            self.changeTypes = changeTypes
            self.dependsOn = dependsOn
            self.format = format
            self.paginate = paginate
        }

        /// Its output path, for `subject` when it is per-subject (the subject as one safe
        /// file name), for `page` (from 1) when it is paginated.
        public func outputPath(for subject: String?, page: Int? = nil) -> String {
            var path = subject.map { output.replacingOccurrences(of: "{{subject}}", with: SubjectFileName.make(for: $0)) } ?? output
            if let page { path = path.replacingOccurrences(of: "{{page}}", with: String(page)) }
            return path
        }

        /// Whether it uses `subject`.
        public func uses(_ subject: String) -> Bool { subjects.contains { Glob.matches($0, subject) } }
    }

    /// The artifacts.
    public var artifacts: [Artifact]

    /// Creates a manifest.
    public init(artifacts: [Artifact]) { self.artifacts = artifacts }

    /// Reads `manifest.yaml` (or `.yml`, `.json`) from `directory` and checks it.
    /// - Throws: `TemplateError.manifest` naming the problem (missing file, unknown
    ///   dependency, dependency cycle, duplicate name, unsafe output path).
    public static func load(from directory: String) throws -> TemplateManifest {
        let candidates = ["manifest.yaml", "manifest.yml", "manifest.json"].map { "\(directory)/\($0)" }
        guard let path = candidates.first(where: FileManager.default.fileExists(atPath:)),
            let text = try? String(contentsOfFile: path, encoding: .utf8)
        else { throw TemplateError.manifest("no manifest.yaml in \(directory)") }
        let manifest: TemplateManifest
        do { manifest = try YAMLDecoder().decode(TemplateManifest.self, from: text) } catch {
            throw TemplateError.manifest("\(path): \(error)")
        }
        try manifest.check()
        return manifest
    }

    /// Rejects duplicate names, unknown or cyclic dependencies, outputs that leave the output
    /// directory, and outputs whose format is neither given nor implied by their extension.
    /// - Throws: `TemplateError.manifest`.
    public func check() throws {
        let names = artifacts.map(\.name)
        if let duplicate = names.first(where: { name in names.filter { $0 == name }.count > 1 }) {
            throw TemplateError.manifest("artifact name '\(duplicate)' is used twice")
        }
        for artifact in artifacts {
            if let unknown = artifact.dependsOn.first(where: { !names.contains($0) }) {
                throw TemplateError.manifest("artifact '\(artifact.name)' depends on unknown artifact '\(unknown)'")
            }
            if let size = artifact.paginate {
                guard size >= 1 else {
                    throw TemplateError.manifest("artifact '\(artifact.name)': paginate must be an integer >= 1, not \(size)")
                }
                guard !artifact.isPerSubject, artifact.output.contains("{{page}}") else {
                    throw TemplateError.manifest(
                        "artifact '\(artifact.name)': a paginated output names its pages with {{page}} and is not per subject "
                            + "(output '\(artifact.output)')")
                }
            } else if artifact.output.contains("{{page}}") {
                throw TemplateError.manifest("artifact '\(artifact.name)': output '\(artifact.output)' uses {{page}} without paginate: N")
            }
            let components = artifact.output.split(separator: "/")
            if artifact.output.hasPrefix("/") || components.contains("..") || components.isEmpty {
                throw TemplateError.manifest("artifact '\(artifact.name)': output '\(artifact.output)' must be a relative path inside the output directory")
            }
        }
        _ = try DependencyGraph(self).topologicalOrder()
        if let artifact = artifacts.first(where: { $0.resolvedFormat == nil }) {
            throw TemplateError.manifest(
                "artifact '\(artifact.name)': output '\(artifact.output)' has no extension that names its format; "
                    + "set format: to one of \(OutputFormat.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }
}

/// What went wrong in the template processor.
public enum TemplateError: Error, Sendable, Hashable, CustomStringConvertible {
    case manifest(String)
    /// `artifact` names the artifact, quoted, with its template and output when known.
    case render(artifact: String, reason: String)
    case deploy(String)
    /// The subject store cannot be opened, read or written.
    case state(String)

    public var description: String {
        switch self {
        case .manifest(let reason): "template manifest: \(reason)"
        case .render(let artifact, let reason): "render of \(artifact) failed: \(reason)"
        case .deploy(let reason): "deployment failed: \(reason)"
        case .state(let reason): "subject store: \(reason)"
        }
    }
}

/// `*` and `?` globs over whole strings.
enum Glob {
    static func matches(_ pattern: String, _ text: String) -> Bool {
        matches(Array(pattern.unicodeScalars)[...], Array(text.unicodeScalars)[...])
    }

    private static func matches(_ pattern: ArraySlice<Unicode.Scalar>, _ text: ArraySlice<Unicode.Scalar>) -> Bool {
        guard let first = pattern.first else { return text.isEmpty }
        switch first {
        case "*":
            var rest = text
            while true {
                if matches(pattern.dropFirst(), rest) { return true }
                guard !rest.isEmpty else { return false }
                rest = rest.dropFirst()
            }
        case "?":
            return !text.isEmpty && matches(pattern.dropFirst(), text.dropFirst())
        default:
            return text.first == first && matches(pattern.dropFirst(), text.dropFirst())
        }
    }
}
