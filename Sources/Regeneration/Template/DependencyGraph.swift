import Orchestration

/// One file to render: an artifact, for one subject when it is per-subject.
public struct ArtifactInstance: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The artifact's name.
    public var artifact: String
    /// The subject, for per-subject artifacts.
    public var subject: String?

    public var description: String { subject.map { "\(artifact)[\($0)]" } ?? artifact }
    public static func < (lhs: Self, rhs: Self) -> Bool { (lhs.artifact, lhs.subject ?? "") < (rhs.artifact, rhs.subject ?? "") }
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
