import Orchestration

/// One file to render: an artifact, for one subject when it is per-subject, one page
/// when it is paginated.
public struct ArtifactInstance: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The artifact's name.
    public var artifact: String
    /// The subject, for per-subject artifacts.
    public var subject: String?
    /// The page (from 1), for paginated artifacts; nil in ``DependencyGraph/affected(by:knownSubjects:)``'s
    /// answer, which says the artifact is affected, not which of its pages.
    public var page: Int?

    public init(artifact: String, subject: String? = nil, page: Int? = nil) {
        self.artifact = artifact
        self.subject = subject
        self.page = page
    }

    public var description: String {
        if let subject { return "\(artifact)[\(subject)]" }
        if let page { return "\(artifact)[page \(page)]" }
        return artifact
    }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.artifact, lhs.subject ?? "", lhs.page ?? 0) < (rhs.artifact, rhs.subject ?? "", rhs.page ?? 0)
    }
}

/// The artifacts' dependency graph: which files a set of change events affects,
/// directly and through `dependsOn`, each once.
struct DependencyGraph: Sendable {
    private let artifacts: [String: TemplateManifest.Artifact]
    private let dependents: [String: [String]]

    init(_ manifest: TemplateManifest) {
        artifacts = Dictionary(uniqueKeysWithValues: manifest.artifacts.map { ($0.name, $0) })
        var dependents: [String: [String]] = [:]
        for artifact in manifest.artifacts { for dependency in artifact.dependsOn { dependents[dependency, default: []].append(artifact.name) } }
        self.dependents = dependents
    }

    /// Artifacts in an order where each comes after what it depends on.
    /// - Throws: `TemplateError.manifest` naming an artifact on a dependency cycle.
    func topologicalOrder() throws -> [String] {
        var order: [String] = []
        var state: [String: Bool] = [:]  // false: visiting, true: done
        func visit(_ name: String) throws {
            if state[name] == true { return }
            if state[name] == false { throw TemplateError.manifest("dependency cycle through artifact '\(name)'") }
            state[name] = false
            for dependency in artifacts[name]?.dependsOn ?? [] { try visit(dependency) }
            state[name] = true
            order.append(name)
        }
        for name in artifacts.keys.sorted() { try visit(name) }
        return order
    }

    /// The files `events` affect, given the subjects known after applying them.
    func affected(by events: [ChangeEvent], knownSubjects: [String]) -> Set<ArtifactInstance> {
        var instances: Set<ArtifactInstance> = []
        var queue: [ArtifactInstance] = []
        for event in events {
            for artifact in artifacts.values where affects(event, artifact) {
                if !artifact.isPerSubject {
                    queue.append(ArtifactInstance(artifact: artifact.name, subject: nil))
                } else if event.changeType == .schemaChanged || event.changeType == .templateChanged {
                    queue += knownSubjects.filter(artifact.uses).map { ArtifactInstance(artifact: artifact.name, subject: $0) }
                } else {
                    queue.append(ArtifactInstance(artifact: artifact.name, subject: event.subject))
                }
            }
        }
        while let instance = queue.popLast() {
            guard instances.insert(instance).inserted else { continue }
            for name in dependents[instance.artifact] ?? [] {
                guard let dependent = artifacts[name] else { continue }
                if dependent.isPerSubject {
                    queue += knownSubjects.filter(dependent.uses).map { ArtifactInstance(artifact: name, subject: $0) }
                } else {
                    queue.append(ArtifactInstance(artifact: name, subject: nil))
                }
            }
        }
        return instances
    }

    /// The artifacts that `events` affect as a whole, whatever their subjects: through a
    /// schema or template change, directly or by a dependency. A paginated artifact among
    /// them has every page rendered again; otherwise only the pages whose subjects changed.
    func affectedWholly(by events: [ChangeEvent], knownSubjects: [String]) -> Set<String> {
        let global = events.filter { $0.changeType == .schemaChanged || $0.changeType == .templateChanged }
        guard !global.isEmpty else { return [] }
        return Set(affected(by: global, knownSubjects: knownSubjects).map(\.artifact))
    }

    private func affects(_ event: ChangeEvent, _ artifact: TemplateManifest.Artifact) -> Bool {
        switch event.changeType {
        case .schemaChanged: return true
        case .templateChanged: return event.subject == artifact.template
        default:
            return artifact.uses(event.subject) && (artifact.changeTypes?.contains(event.changeType) ?? true)
        }
    }

    func artifact(_ name: String) -> TemplateManifest.Artifact? { artifacts[name] }
}
