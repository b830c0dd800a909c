import Foundation
import GRDB
import Orchestration

/// The subject store on disk: an SQLite database (`OUTPUT/.regen/state.sqlite`, WAL mode,
/// schema versioned by migrations). Each cycle writes, in one transaction, only the
/// subjects it changed; with `durability: fsync` the transaction is durable when
/// ``save(_:changed:)`` returns (`synchronous = FULL`).
///
/// A `state.json` left by an earlier regen is imported once, on the first start with an
/// empty database, and renamed `state.json.imported`.
final class SubjectDatabase: Sendable {
    private let queue: DatabaseQueue

    /// Opens (or creates and migrates) the database at `path`.
    /// - Throws: when it cannot be opened or migrated.
    init(path: String, durability: Durability) throws {
        var configuration = Configuration()
        configuration.journalMode = .wal
        configuration.busyMode = .timeout(10)  // another writer on the same file (a misconfiguration) waits, then fails
        configuration.prepareDatabase { db in
            try db.execute(sql: durability == .fsync ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = OFF")
        }
        queue = try DatabaseQueue(path: path, configuration: configuration)
        try Self.migrator.migrate(queue)
    }

    /// Opens the database at `path` for reading only: in WAL mode a reader never blocks
    /// the regen that writes it.
    /// - Throws: when it cannot be opened, or was not written by this version's migrations.
    init(readingOnly path: String) throws {
        var configuration = Configuration()
        configuration.readonly = true
        queue = try DatabaseQueue(path: path, configuration: configuration)
        let known = try queue.read { db in try Self.migrator.hasCompletedMigrations(db) }
        guard known else { throw DatabaseError(message: "\(path) was not written by this version of regen") }
    }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: subjects and removed subjects") { db in
            // properties, edges and applied are JSON: an object, [[predicate, object]], and
            // {"topic/partition": offset}. updatedAt is seconds since 2001 (Date's own scale).
            try db.execute(
                sql: """
                    CREATE TABLE subject (
                        name TEXT PRIMARY KEY NOT NULL,
                        properties TEXT NOT NULL,
                        edges TEXT NOT NULL,
                        lastChange TEXT NOT NULL,
                        updatedAt DOUBLE NOT NULL,
                        source TEXT NOT NULL,
                        applied TEXT NOT NULL
                    ) WITHOUT ROWID;
                    CREATE TABLE removed (
                        name TEXT PRIMARY KEY NOT NULL,
                        applied TEXT NOT NULL
                    ) WITHOUT ROWID;
                    """)
        }
        return migrator
    }

    /// Every subject, and every removed subject's positions.
    /// - Throws: when the database cannot be read or holds a value regen did not write.
    func load() throws -> SubjectStore {
        try queue.read { db in
            var subjects: [String: SubjectStore.Subject] = [:]
            let rows = try Row.fetchCursor(db, sql: "SELECT name, properties, edges, lastChange, updatedAt, source, applied FROM subject")
            while let row = try rows.next() {
                var subject = SubjectStore.Subject()
                let name: String = row[0]
                guard case .object(let properties) = try Self.json(row[1]), let lastChange = ChangeType(rawValue: row[3]) else {
                    throw DatabaseError(message: "subject '\(name)': unreadable properties or change type")
                }
                subject.properties = properties
                subject.edges = try Self.edges(row[2])
                subject.lastChange = lastChange
                subject.updatedAt = Date(timeIntervalSinceReferenceDate: row[4])
                subject.source = row[5]
                subject.applied = try Self.applied(row[6])
                subjects[name] = subject
            }
            var removed: [String: [String: Int64]] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT name, applied FROM removed") { removed[row[0]] = try Self.applied(row[1]) }
            return SubjectStore(subjects: subjects, removed: removed)
        }
    }

    /// Writes the state of `changed` subjects as `store` holds it, in one transaction.
    /// - Throws: when the transaction fails; nothing of it is then written.
    func save(_ store: SubjectStore, changed: Set<String>) throws {
        guard !changed.isEmpty else { return }
        try queue.write { db in
            let upsert = try db.cachedStatement(
                sql: """
                    INSERT INTO subject (name, properties, edges, lastChange, updatedAt, source, applied) VALUES (?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT(name) DO UPDATE SET properties = excluded.properties, edges = excluded.edges,
                        lastChange = excluded.lastChange, updatedAt = excluded.updatedAt, source = excluded.source, applied = excluded.applied
                    """)
            let deleteSubject = try db.cachedStatement(sql: "DELETE FROM subject WHERE name = ?")
            let tombstone = try db.cachedStatement(sql: "INSERT OR REPLACE INTO removed (name, applied) VALUES (?, ?)")
            let deleteTombstone = try db.cachedStatement(sql: "DELETE FROM removed WHERE name = ?")
            for name in changed.sorted() {
                if let subject = store.subjects[name] {
                    try upsert.execute(arguments: [
                        name, JSONValue.object(subject.properties).jsonText,
                        JSONValue.array(subject.edges.map { .array([.string($0.predicate), .string($0.object)]) }).jsonText,
                        subject.lastChange.rawValue, subject.updatedAt.timeIntervalSinceReferenceDate, subject.source,
                        Self.text(subject.applied),
                    ])
                    try deleteTombstone.execute(arguments: [name])
                } else {
                    try deleteSubject.execute(arguments: [name])
                    if let applied = store.removed[name] { try tombstone.execute(arguments: [name, Self.text(applied)]) }
                }
            }
        }
    }

    /// Replaces the whole content with `store` (the import of a `state.json`).
    func replaceAll(with store: SubjectStore) throws {
        try queue.write { db in
            try db.execute(sql: "DELETE FROM subject; DELETE FROM removed")
        }
        try save(store, changed: Set(store.subjects.keys).union(store.removed.keys))
    }

    /// Whether it holds no subject, removed or not.
    func isEmpty() throws -> Bool {
        try queue.read { db in
            try Int.fetchOne(db, sql: "SELECT (SELECT count(*) FROM subject) + (SELECT count(*) FROM removed)") == 0
        }
    }

    private static func text(_ applied: [String: Int64]) -> String {
        JSONValue.object(applied.mapValues { .number(Double($0)) }).jsonText
    }

    private static func json(_ text: String) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
    }

    private static func edges(_ text: String) throws -> [SubjectStore.Edge] {
        guard case .array(let pairs) = try json(text) else { throw DatabaseError(message: "unreadable edges: \(text)") }
        return try pairs.map { pair in
            guard case .array(let fields) = pair, fields.count == 2, case .string(let predicate) = fields[0],
                case .string(let object) = fields[1]
            else { throw DatabaseError(message: "unreadable edge: \(pair)") }
            return SubjectStore.Edge(predicate: predicate, object: object)
        }
    }

    private static func applied(_ text: String) throws -> [String: Int64] {
        guard case .object(let members) = try json(text) else { throw DatabaseError(message: "unreadable positions: \(text)") }
        return try members.mapValues { value in
            guard case .number(let offset) = value else { throw DatabaseError(message: "unreadable position: \(value)") }
            return Int64(offset)
        }
    }
}
