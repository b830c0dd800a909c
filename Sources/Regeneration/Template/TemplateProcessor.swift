import Foundation
import Mustache
import Orchestration

/// Regenerates artifacts from Mustache templates when the subjects they use change,
/// and deploys them atomically: the seed's RegenerationEngine and DeploymentAutomation.
///
/// Events only feed the subject store; at the end of each cycle the affected artifacts
/// (through the manifest's dependency graph, transitively) are rendered once each with
/// the latest state, validated, and deployed as one set. A failure deploys nothing and
/// leaves the cycle's events not done, so they are read again.
public actor TemplateProcessor: EventProcessor {
    private let graph: DependencyGraph
    private let library: MustacheLibrary
    private let deployer: ArtifactDeployer
    private let statePath: String
    private let clock: @Sendable () -> Date
    private var store: SubjectStore

    /// Loads the manifest and templates of `templatesDirectory`; writes into `outputDirectory`.
    /// - Throws: `TemplateError.manifest`, or when templates or the stored state cannot be read.
    public init(templatesDirectory: String, outputDirectory: String, clock: @escaping @Sendable () -> Date = { Date() }) async throws {
        let manifest = try TemplateManifest.load(from: templatesDirectory)
        graph = DependencyGraph(manifest)
        library = try await MustacheLibrary(directory: templatesDirectory)
        for artifact in manifest.artifacts where library.getTemplate(named: artifact.template) == nil {
            throw TemplateError.manifest("artifact '\(artifact.name)': no template \(artifact.template).mustache in \(templatesDirectory)")
        }
        let output = URL(fileURLWithPath: outputDirectory)
        try FileManager.default.createDirectory(at: output.appendingPathComponent(".regen"), withIntermediateDirectories: true)
        deployer = ArtifactDeployer(outputRoot: output)
        statePath = output.appendingPathComponent(".regen/state.json").path
        store = try SubjectStore.load(from: statePath)
        self.clock = clock
    }

    /// Events are applied at the end of the cycle, in offset order; nothing to do here.
    public nonisolated func process(_ event: ChangeEvent, context: EventContext) async throws -> ProcessingReport { .none }

    /// Applies the cycle's events, renders every affected artifact once, deploys them together.
    /// - Throws: `TemplateError` when a render, a validation or the deployment fails.
    public func completeCycle(_ events: [CompletedEvent], executionID: String) async throws -> ProcessingReport {
        var next = store
        for completed in events { next.apply(completed.event) }
        let affected = graph.affected(by: events.map(\.event), knownSubjects: next.subjects.keys.sorted())
        var files: [String: String] = [:]
        for instance in affected.sorted() {
            files[try path(of: instance)] = try render(instance, with: next, executionID: executionID)
        }
        if !files.isEmpty { try deployer.deploy(files, executionID: executionID) }
        try next.save(to: statePath)
        store = next
        return ProcessingReport(regenerations: files.count, deployments: files.isEmpty ? 0 : 1)
    }

    private func path(of instance: ArtifactInstance) throws -> String {
        guard let artifact = graph.artifact(instance.artifact) else { throw TemplateError.manifest("unknown artifact \(instance.artifact)") }
        guard let subject = instance.subject else { return artifact.output }
        return artifact.output.replacingOccurrences(of: "{{subject}}", with: Self.fileName(for: subject))
    }

    /// A subject as one safe path component: anything but letters, digits, `-`, `_` and
    /// inner dots is percent-encoded, so `../../etc/x` stays a file name in its folder.
    static func fileName(for subject: String) -> String {
        var name = ""
        for (index, byte) in subject.utf8.enumerated() {
            let isSafe = (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == 0x2D || byte == 0x5F || (byte == 0x2E && index > 0)
            name += isSafe ? String(UnicodeScalar(byte)) : String(format: "%%%02X", byte)
        }
        return name.isEmpty ? "%00" : name
    }

    private func render(_ instance: ArtifactInstance, with store: SubjectStore, executionID: String) throws -> String {
        guard let artifact = graph.artifact(instance.artifact) else { throw TemplateError.manifest("unknown artifact \(instance.artifact)") }
        let nodes = store.subjects.keys.filter(artifact.uses).sorted().map(store.context(of:))
        var context: [String: Any] = [
            "artifact": artifact.name, "execution_id": executionID, "generated_at": RFC3339.format(clock()),
            "nodes": nodes, "count": nodes.count,
        ]
        if let subject = instance.subject {
            context["subject"] = subject
            context["node"] = store.context(of: subject)
        }
        guard let text = library.render(context, withTemplate: artifact.template) else {
            throw TemplateError.render(artifact: artifact.name, reason: "template '\(artifact.template)' not found")
        }
        return text
    }
}
