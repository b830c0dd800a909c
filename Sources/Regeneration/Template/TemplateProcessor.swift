import Foundation
import Metrics
import Mustache
import Orchestration
import Synchronization

/// Regenerates artifacts from Mustache templates when the subjects they use change,
/// and deploys them atomically: the seed's RegenerationEngine and DeploymentAutomation.
///
/// Events only feed the subject store; at the end of each cycle the affected artifacts
/// (through the manifest's dependency graph, transitively) are rendered once each with
/// the latest state, validated for their format, and deployed as one set.
///
/// When a file cannot be rendered valid, the processor looks for the cycle's subjects
/// that make it fail (the file renders without their changes; bisecting when there are
/// several) and rejects those subjects' events, with the artifact, the template and the
/// reason, so they are dead-lettered while the rest of the cycle is deployed. A failure
/// that no event of the cycle explains (a deployment error, a file that fails even
/// without the cycle's changes) deploys nothing and throws: the cycle's events are then
/// read again.
public actor TemplateProcessor: EventProcessor {
    private let graph: DependencyGraph
    private let libraries: [OutputFormat: MustacheLibrary]
    private let deployer: ArtifactDeployer
    private let database: SubjectDatabase
    private let clock: @Sendable () -> Date
    /// Files rendered at once in a cycle's render pass.
    private let renderLanes: Int
    private var store: SubjectStore
    /// What a cycle's render pass starts from: the committed store's subject names in
    /// order and the render contexts built so far, kept across cycles so a cycle builds
    /// the contexts of the subjects it changed, not those of every subject.
    private var rendered = RenderBase()
    /// How long each artifact's files took to render (and validate), since the start.
    private nonisolated let renderTimes = RenderTimes()

    /// Per artifact: the files a cycle's render pass rendered since the start and the time
    /// they took, failed renders included (not the renders again of a search for a
    /// failure's cause). Also reported as the `regen_template_render_duration_seconds`
    /// timer, labelled by artifact.
    public nonisolated var renderStatistics: [String: RenderStatistics] { renderTimes.all }

    /// Loads the manifest and templates of `templatesDirectory`; writes into `outputDirectory`,
    /// fsyncing what it writes before a cycle counts as done unless `durability` is `.none`.
    /// A cycle renders up to `renderConcurrency` files at once (the service passes the
    /// orchestrator's concurrency), never more than the machine has cores.
    /// - Throws: `TemplateError.manifest`, or when templates or the stored state cannot be read.
    public init(
        templatesDirectory: String, outputDirectory: String, durability: Durability = .fsync,
        renderConcurrency: Int = ProcessInfo.processInfo.activeProcessorCount,
        clock: @escaping @Sendable () -> Date = { Date() }
    ) async throws {
        renderLanes = max(1, min(renderConcurrency, ProcessInfo.processInfo.activeProcessorCount))
        let manifest = try TemplateManifest.load(from: templatesDirectory)
        graph = DependencyGraph(manifest)
        let texts = try Self.templateTexts(in: templatesDirectory)
        for artifact in manifest.artifacts where texts[artifact.template] == nil {
            throw TemplateError.manifest("artifact '\(artifact.name)': no template \(artifact.template).mustache in \(templatesDirectory)")
        }
        // One library per format in use, so partials escape like the artifact that includes them.
        var libraries: [OutputFormat: MustacheLibrary] = [:]
        for format in Set(manifest.artifacts.compactMap(\.resolvedFormat)) {
            var templates: [String: MustacheTemplate] = [:]
            for (name, text) in texts {
                do { templates[name] = try format.template(text) } catch {
                    throw TemplateError.manifest("template \(name).mustache does not parse: \(error)")
                }
            }
            libraries[format] = MustacheLibrary(templates: templates)
        }
        self.libraries = libraries
        let output = URL(fileURLWithPath: outputDirectory)
        try FileManager.default.createDirectory(at: output.appendingPathComponent(".regen"), withIntermediateDirectories: true)
        deployer = ArtifactDeployer(outputRoot: output, durability: durability)
        database = try SubjectDatabase(path: Self.databasePath(in: outputDirectory), durability: durability)
        let legacy = output.appendingPathComponent(".regen/state.json").path
        if FileManager.default.fileExists(atPath: legacy), try database.isEmpty() {
            try database.replaceAll(with: SubjectStore.load(from: legacy))
            try FileManager.default.moveItem(atPath: legacy, toPath: legacy + ".imported")
        }
        store = try database.load()
        self.clock = clock
    }

    private var completing = false
    private var waitingTurns: [CheckedContinuation<Void, Never>] = []

    private func takeTurn() async {
        guard completing else {
            completing = true
            return
        }
        await withCheckedContinuation { waitingTurns.append($0) }  // handed the turn by endTurn
    }

    private func endTurn() {
        if waitingTurns.isEmpty { completing = false } else { waitingTurns.removeFirst().resume() }
    }

    /// The subject store of the output directory `outputDirectory`.
    static func databasePath(in outputDirectory: String) -> String {
        URL(fileURLWithPath: outputDirectory).appendingPathComponent(".regen/state.sqlite").path
    }

    /// The subject store of `outputDirectory` as JSON (keys sorted, one state one text), for
    /// people and tools that want to look: `regen state export`. Safe while regen runs.
    /// - Throws: when there is no store there, or it cannot be read.
    public static func exportState(outputDirectory: String) throws -> Data {
        let path = databasePath(in: outputDirectory)
        guard FileManager.default.fileExists(atPath: path) else {
            throw TemplateError.state("nothing at \(path): has the template processor run with this output directory?")
        }
        return try SubjectDatabase(readingOnly: path).load().exported()
    }

    /// Where deployments and state writes run: they block on the disk (fsync), which must
    /// not hold a thread of Swift's cooperative pool.
    private static let fileIO = BlockingQueue(label: "regen.template.files")

    /// Every `*.mustache` below `directory`, by its relative path without the extension.
    private static func templateTexts(in directory: String) throws -> [String: String] {
        var texts: [String: String] = [:]
        let paths = FileManager.default.enumerator(atPath: directory)?.allObjects as? [String] ?? []
        for path in paths where path.hasSuffix(".mustache") {
            texts[String(path.dropLast(".mustache".count))] = try String(contentsOfFile: "\(directory)/\(path)", encoding: .utf8)
        }
        return texts
    }

    /// Events are applied at the end of the cycle, in offset order; nothing to do here.
    public nonisolated func process(_ event: ChangeEvent, context: EventContext) async throws -> ProcessingReport { .none }

    /// Applies the cycle's events, renders every affected artifact once, deploys them
    /// together. Events whose subjects make a file fail are rejected instead (their
    /// changes are left out of the state and of every file).
    /// - Throws: `TemplateError` when a file fails whatever the cycle's subjects, or the
    ///   deployment or the state cannot be written; nothing is deployed then.
    public func completeCycle(_ events: [CompletedEvent], executionID: String) async throws -> CycleCompletion {
        // One cycle at a time: with cycles in flight, another cycle's completion would
        // otherwise start from the state this one is about to replace, while it waits
        // for the disk.
        await takeTurn()
        defer { endTurn() }
        // Events read again after a crash whose changes the state holds already: their
        // files were deployed before the state was saved, so they are done.
        let events = events.filter { !store.hasApplied($0) }
        guard !events.isEmpty else { return CycleCompletion(report: .none, rejected: [:]) }
        let generatedAt = RFC3339.format(clock())
        var blamed: [String: String] = [:]  // subject → why its events are rejected
        while true {
            let kept = Self.events(events, leavingOut: Set(blamed.keys))
            let pass = renderPass(kept, executionID: executionID, generatedAt: generatedAt)
            let affected = pages(of: graph.affected(by: kept.map(\.event), knownSubjects: pass.names), in: pass, events: kept)
            var files: [String: String] = [:]
            var failed: [(ArtifactInstance, TemplateError)] = []
            let instances = affected.sorted()
            let outcomes = try await Self.renderAll(instances, lanes: renderLanes) { [self] (instance) throws(TemplateError) in
                let start = ContinuousClock.now
                defer { renderTimes.add(instance.artifact, ContinuousClock.now - start) }
                return try render(instance, in: pass)
            }
            for (instance, outcome) in zip(instances, outcomes) {
                switch outcome {
                case .success(let (path, content)): files[path] = content
                case .failure(let error): failed.append((instance, error))
                }
            }
            if failed.isEmpty {
                // Files first, then the state: a crash between the two renders the cycle
                // again; the other order would lose its files for good.
                let next = pass.store
                let changed = pass.changed
                try await Self.fileIO.run { [deployer, database, files] in
                    if !files.isEmpty { try deployer.deploy(files, executionID: executionID) }
                    try database.save(next, changed: changed)
                }
                store = next
                rendered = pass.base()
                var rejected: [SourcePosition: String] = [:]
                for completed in events where SubjectStore.changesSubject(completed.event) {
                    if let reason = blamed[completed.event.subject] { rejected[completed.position] = reason }
                }
                return CycleCompletion(
                    report: ProcessingReport(regenerations: files.count, deployments: files.isEmpty ? 0 : 1), rejected: rejected)
            }
            // Each round blames at least one more subject or throws, so this ends.
            let blamedBefore = blamed.count
            for (instance, error) in failed {
                let found = try culprits(
                    of: instance, failing: error, events: events, blamed: Set(blamed.keys), executionID: executionID, generatedAt: generatedAt)
                for subject in found {
                    blamed[subject] = "artifact \(instance.describe(in: graph)) fails with this subject's changes: \(error.reason)"
                }
            }
            if blamed.count == blamedBefore, let (instance, error) = failed.first {
                throw TemplateError.render(artifact: instance.describe(in: graph), reason: "\(error.reason) (no subject of this cycle explains it)")
            }
        }
    }

    /// The subjects of this cycle whose changes make `instance` fail: none when it no
    /// longer fails without the subjects already blamed.
    /// - Throws: `error`, said to be unexplained, when it fails even without every subject
    ///   of the cycle it uses.
    private func culprits(
        of instance: ArtifactInstance, failing error: TemplateError, events: [CompletedEvent], blamed: Set<String>, executionID: String,
        generatedAt: String
    ) throws -> [String] {
        guard let artifact = graph.artifact(instance.artifact) else { throw error }
        func fails(leavingOut subjects: Set<String>) -> Bool {
            let pass = renderPass(Self.events(events, leavingOut: subjects), executionID: executionID, generatedAt: generatedAt)
            return (try? render(instance, in: pass)) == nil
        }
        guard fails(leavingOut: blamed) else { return [] }
        let suspects = Array(Set(events.map(\.event).filter { SubjectStore.changesSubject($0) && artifact.uses($0.subject) }.map(\.subject)))
            .filter { !blamed.contains($0) }.sorted()
        guard !suspects.isEmpty, !fails(leavingOut: blamed.union(suspects)) else {
            throw TemplateError.render(
                artifact: instance.describe(in: graph), reason: "\(error.reason) (it fails without every subject this cycle changed)")
        }
        // With all suspects left out it renders, with all of them it fails. Bisect: each half
        // is tried on top of what is known to be innocent; a half that fails holds a culprit.
        let all = Set(suspects)
        func failsIncluding(_ included: Set<String>) -> Bool { fails(leavingOut: blamed.union(all.subtracting(included))) }
        func isolate(_ tried: ArraySlice<String>, innocent: Set<String>) -> [String] {
            if tried.count == 1 { return Array(tried) }
            let half = tried.startIndex + tried.count / 2
            let (first, second) = (tried[..<half], tried[half...])
            let inFirst = failsIncluding(innocent.union(first)) ? isolate(first, innocent: innocent) : []
            let widened = innocent.union(first).subtracting(inFirst)
            let inSecond = failsIncluding(widened.union(second)) ? isolate(second, innocent: widened) : []
            return inFirst + inSecond
        }
        return isolate(suspects[...], innocent: [])
    }

    /// `affected` with each paginated artifact replaced by the pages to render again: all of
    /// them when the artifact is affected as a whole (a schema or template change), else the
    /// pages whose subjects changed or whose membership moved (a subject added or removed
    /// shifts the pages after it). Pages past a shrunken end are rendered too, empty.
    private func pages(of affected: Set<ArtifactInstance>, in pass: RenderPass, events: [CompletedEvent]) -> Set<ArtifactInstance> {
        var result: Set<ArtifactInstance> = []
        var wholly: Set<String>?
        var before: [String]?
        for instance in affected {
            guard let artifact = graph.artifact(instance.artifact), let size = artifact.paginate else {
                result.insert(instance)
                continue
            }
            let whole = (wholly ?? {
                let found = graph.affectedWholly(by: events.map(\.event), knownSubjects: pass.names)
                wholly = found
                return found
            }()).contains(artifact.name)
            let old = (before ?? {
                // The committed order: kept from the last pass, or read once after a start.
                let names = rendered.names.isEmpty ? store.subjects.keys.sorted() : rendered.names
                before = names
                return names
            }()).filter(artifact.uses)
            let new = pass.usedNames(of: artifact)
            let count = max(1, Self.pageCount(old.count, size), Self.pageCount(new.count, size))
            for page in 1...count {
                let range = Self.range(of: page, size: size)
                let now = new[range.clamped(to: new.indices)]
                if whole || old[range.clamped(to: old.indices)] != now || now.contains(where: pass.changed.contains) {
                    result.insert(ArtifactInstance(artifact: artifact.name, page: page))
                }
            }
        }
        return result
    }

    static func pageCount(_ subjects: Int, _ size: Int) -> Int { (subjects + size - 1) / size }
    static func range(of page: Int, size: Int) -> Range<Int> { (page - 1) * size..<page * size }

    /// Where render passes run: off Swift's cooperative pool, which they would hold for the
    /// whole pass, spread over `lanes` threads of Dispatch's pool.
    private static let renderQueue = DispatchQueue(label: "regen.template.render")

    /// `render` applied to each instance, `lanes` at a time; the outcomes in `instances`' order.
    private static func renderAll(
        _ instances: [ArtifactInstance], lanes: Int,
        _ render: @escaping @Sendable (ArtifactInstance) throws(TemplateError) -> (String, String)
    ) async throws -> [Result<(String, String), TemplateError>] {
        guard !instances.isEmpty else { return [] }
        let outcomes = RenderOutcomes(count: instances.count)
        let lanes = min(lanes, instances.count)
        try await BlockingQueue(queue: renderQueue).run {
            DispatchQueue.concurrentPerform(iterations: lanes) { lane in
                for index in stride(from: lane, to: instances.count, by: lanes) {
                    outcomes.set(index, Result { () throws(TemplateError) in try render(instances[index]) })
                }
            }
        }
        return outcomes.all
    }

    /// `events` without the changes of `subjects`.
    private static func events(_ events: [CompletedEvent], leavingOut subjects: Set<String>) -> [CompletedEvent] {
        subjects.isEmpty ? events : events.filter { !(SubjectStore.changesSubject($0.event) && subjects.contains($0.event.subject)) }
    }

    /// A render pass over the store with `events` applied in order.
    private func renderPass(_ events: [CompletedEvent], executionID: String, generatedAt: String) -> RenderPass {
        var next = store
        for completed in events { next.apply(completed) }
        let changed = Set(events.lazy.filter { SubjectStore.changesSubject($0.event) }.map(\.event.subject))
        return RenderPass(store: next, changed: changed, from: rendered, executionID: executionID, generatedAt: generatedAt)
    }

    /// The file's path and its content, rendered and validated for the artifact's format.
    /// Reads only what does not change (the manifest, the templates) and the pass, which
    /// is safe from several threads: render passes run it in parallel.
    private nonisolated func render(_ instance: ArtifactInstance, in pass: RenderPass) throws(TemplateError) -> (String, String) {
        guard let artifact = graph.artifact(instance.artifact), let format = artifact.resolvedFormat,
            let library = libraries[format]
        else { throw TemplateError.manifest("unknown artifact \(instance.artifact)") }
        var fields: [String: Any] = [
            "artifact": artifact.name, "execution_id": pass.executionID, "generated_at": pass.generatedAt,
        ]
        if let subject = instance.subject {
            fields["subject"] = subject
            fields["node"] = pass.context(of: subject)
        }
        var nodes = { pass.nodes(of: artifact) }
        var count = { pass.usedNames(of: artifact).count }
        if let page = instance.page, let size = artifact.paginate {
            let all = pass.usedNames(of: artifact)
            let pages = max(1, Self.pageCount(all.count, size))
            let onPage = Array(all[Self.range(of: page, size: size).clamped(to: all.indices)])
            fields["page"] = page
            fields["pages"] = pages
            fields["total"] = all.count
            let name = { (page: Int) in (artifact.outputPath(for: nil, page: page) as NSString).lastPathComponent }
            if page > 1 { fields["previous_page"] = name(min(page - 1, pages)) }
            if page < pages { fields["next_page"] = name(page + 1) }
            nodes = { onPage.map(pass.context(of:)) }
            count = { onPage.count }
        }
        let context = RenderContext(fields: fields, nodes: nodes, count: count)
        guard let text = library.render(context, withTemplate: artifact.template) else {
            throw TemplateError.render(artifact: instance.describe(in: graph), reason: "template '\(artifact.template)' not found")
        }
        if let problem = format.problem(with: text) {
            throw TemplateError.render(artifact: instance.describe(in: graph), reason: problem)
        }
        return (artifact.outputPath(for: instance.subject, page: instance.page), text)
    }
}

/// A file's top-level context: its fixed fields, and `nodes` and `count` built only when
/// the template asks for them (a page of one subject does not build the list of all, and
/// `count` alone builds no subject's context).
private struct RenderContext: MustacheParent {
    let fields: [String: Any]
    let nodes: () -> [[String: Any]]
    let count: () -> Int

    func child(named name: String) -> Any? {
        switch name {
        case "nodes": nodes()
        case "count": count()
        default: fields[name]
        }
    }
}

/// The committed store's subject names in order, and the render contexts of its subjects
/// built so far.
private struct RenderBase {
    var names: [String] = []
    var contexts: [String: [String: Any]] = [:]
}

/// The outcomes of a parallel render pass, each written once by the lane that rendered it.
private final class RenderOutcomes: @unchecked Sendable {  // every access holds `lock`
    private let lock = NSLock()
    private var outcomes: [Result<(String, String), TemplateError>?]

    init(count: Int) { outcomes = Array(repeating: nil, count: count) }

    func set(_ index: Int, _ outcome: Result<(String, String), TemplateError>) { lock.withLock { outcomes[index] = outcome } }

    var all: [Result<(String, String), TemplateError>] { lock.withLock { outcomes.map { $0! } } }
}

/// One attempt at rendering a cycle: the state it renders, the subjects whose state
/// differs from the committed one, and what it built: each subject's context at most
/// once, and per set of subject patterns the list of their contexts at most once, however
/// many files use them. Files render in parallel: the caches are behind a lock, and what
/// they hand out is never changed afterwards.
private final class RenderPass: @unchecked Sendable {  // the caches are accessed under `lock` only; the rest is immutable
    let store: SubjectStore
    let executionID: String
    let generatedAt: String
    /// The subjects the pass's events change.
    let changed: Set<String>
    private let start: RenderBase
    private let lock = NSLock()
    private var contexts: [String: [String: Any]] = [:]
    private var nodesByPatterns: [[String]: [[String: Any]]] = [:]
    private var namesByPatterns: [[String]: [String]] = [:]

    /// Every subject of the pass's store, in order.
    let names: [String]

    init(store: SubjectStore, changed: Set<String>, from start: RenderBase, executionID: String, generatedAt: String) {
        self.store = store
        self.changed = changed
        self.start = start
        self.executionID = executionID
        self.generatedAt = generatedAt
        if start.names.isEmpty {
            names = store.subjects.keys.sorted()  // the first cycle since the start, or an empty store
        } else {
            var kept = start.names
            if !changed.isEmpty { kept.removeAll { changed.contains($0) } }
            names = Self.merge(kept, changed.filter { store.subjects[$0] != nil }.sorted())
        }
    }

    /// The render context of `subject` in this pass's state.
    func context(of subject: String) -> [String: Any] {
        if !changed.contains(subject), let context = start.contexts[subject] { return context }  // `start` never changes
        if let context = lock.withLock({ contexts[subject] }) { return context }
        let context = store.context(of: subject)
        return lock.withLock {
            if let first = contexts[subject] { return first }  // another lane built it meanwhile
            contexts[subject] = context
            return context
        }
    }

    /// The subjects `artifact` uses, in order.
    func usedNames(of artifact: TemplateManifest.Artifact) -> [String] {
        if let used = lock.withLock({ namesByPatterns[artifact.subjects] }) { return used }
        let used = names.filter(artifact.uses)
        lock.withLock { namesByPatterns[artifact.subjects] = namesByPatterns[artifact.subjects] ?? used }
        return used
    }

    /// The contexts of the subjects `artifact` uses, in order.
    func nodes(of artifact: TemplateManifest.Artifact) -> [[String: Any]] {
        if let nodes = lock.withLock({ nodesByPatterns[artifact.subjects] }) { return nodes }
        let nodes = usedNames(of: artifact).map(context(of:))
        lock.withLock { nodesByPatterns[artifact.subjects] = nodesByPatterns[artifact.subjects] ?? nodes }
        return nodes
    }

    /// What the next cycle starts from once this pass's state is committed.
    func base() -> RenderBase {
        var next = start.contexts
        for subject in changed { next[subject] = nil }
        for (subject, context) in contexts where store.subjects[subject] != nil { next[subject] = context }
        return RenderBase(names: names, contexts: next)
    }

    /// Two sorted lists without duplicates as one.
    private static func merge(_ a: [String], _ b: [String]) -> [String] {
        guard !b.isEmpty else { return a }
        var merged: [String] = []
        merged.reserveCapacity(a.count + b.count)
        var i = a.startIndex, j = b.startIndex
        while i < a.endIndex, j < b.endIndex {
            if a[i] < b[j] { merged.append(a[i]); i += 1 } else { merged.append(b[j]); j += 1 }
        }
        merged += a[i...]
        merged += b[j...]
        return merged
    }
}

extension ArtifactInstance {
    /// `'name' (template 'node', output 'nodes/x.html')`, for reasons and logs.
    func describe(in graph: DependencyGraph) -> String {
        guard let artifact = graph.artifact(self.artifact) else { return "'\(self.artifact)'" }
        return "'\(artifact.name)' (template '\(artifact.template)', output '\(artifact.outputPath(for: subject, page: page))')"
    }
}

extension TemplateError {
    /// The reason without the artifact's name.
    var reason: String {
        switch self {
        case .manifest(let reason), .render(_, let reason), .deploy(let reason), .state(let reason): reason
        }
    }
}

/// A serial dispatch queue for blocking work, awaited without blocking the caller's thread.
struct BlockingQueue: Sendable {
    private let queue: DispatchQueue

    init(label: String) { queue = DispatchQueue(label: label) }
    init(queue: DispatchQueue) { self.queue = queue }

    func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result(catching: work)) }
        }
    }
}

/// The files of one artifact rendered so far and the time they took.
public struct RenderStatistics: Sendable, Hashable {
    public var renders = 0
    public var total = Duration.zero

    public init(renders: Int = 0, total: Duration = .zero) {
        self.renders = renders
        self.total = total
    }

    /// The mean time per file; zero before any.
    public var mean: Duration { renders == 0 ? .zero : total / renders }
}

/// Render times by artifact, added to from the render lanes.
private final class RenderTimes: Sendable {
    private let state = Mutex<[String: (statistics: RenderStatistics, timer: Timer)]>([:])

    func add(_ artifact: String, _ duration: Duration) {
        let timer = state.withLock { state -> Timer in
            let entry = state[artifact] ?? (RenderStatistics(), Timer(label: "regen_template_render_duration_seconds", dimensions: [("artifact", artifact)]))
            state[artifact] = (RenderStatistics(renders: entry.statistics.renders + 1, total: entry.statistics.total + duration), entry.timer)
            return entry.timer
        }
        timer.record(duration: duration)
    }

    var all: [String: RenderStatistics] { state.withLock { $0.mapValues(\.statistics) } }
}
