import Foundation
import Synchronization

/// Whether the template processor waits for its files to reach the disk before a cycle
/// counts as done (and its offsets may be committed).
public enum Durability: String, Sendable, Codable, CaseIterable {
    /// Every staged file and every directory it passes through is fsynced, and the subject
    /// store commits with `synchronous = FULL`: after a power loss, a cycle whose offsets
    /// were committed has its artifacts and state on disk.
    case fsync
    /// No fsync (`synchronous = OFF`): faster, but a power loss (not a process crash) right
    /// after a commit can leave artifacts empty or missing, or the store behind, while their
    /// events are never read again.
    case none
}

/// File writes with POSIX calls, so that what must survive a power loss is fsynced:
/// Foundation's `Data.write(to:)` never is.
enum DurableFiles {
    /// Creates (or truncates) `path` and writes `bytes` (not fsynced: see ``sync(_:)``).
    /// - Throws: `TemplateError.deploy` naming the path and the system's error.
    static func write(_ bytes: some Collection<UInt8>, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw failure("create", path) }
        var closed = false
        defer { if !closed { _ = close(fd) } }
        let written: Bool = bytes.withContiguousStorageIfAvailable { writeAll(fd, UnsafeRawBufferPointer($0)) }
            ?? Array(bytes).withUnsafeBytes { writeAll(fd, $0) }
        guard written else { throw failure("write", path) }
        closed = true
        if close(fd) != 0 { throw failure("close", path) }
    }

    /// fsyncs the files at `paths`, several at once: the file system can then make them
    /// durable in one journal commit instead of one commit each.
    /// - Throws: `TemplateError.deploy` for the first file that could not be synced.
    static func sync(_ paths: [String]) throws {
        guard !paths.isEmpty else { return }
        let lanes = min(8, paths.count)
        let failures = Mutex<[TemplateError]>([])
        DispatchQueue.concurrentPerform(iterations: lanes) { lane in
            for index in stride(from: lane, to: paths.count, by: lanes) {
                let fd = open(paths[index], O_RDONLY | O_CLOEXEC)
                guard fd >= 0 else { let error = failure("open", paths[index]); failures.withLock { $0.append(error) }; return }
                if fsync(fd) != 0 { let error = failure("fsync", paths[index]); failures.withLock { $0.append(error) } }
                _ = close(fd)
            }
        }
        if let first = failures.withLock({ $0.first }) { throw first }
    }

    /// fsyncs a directory, so the names created, renamed or removed in it are on disk.
    /// - Throws: `TemplateError.deploy`.
    static func syncDirectory(_ path: String) throws {
        let fd = open(path.isEmpty ? "." : path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw failure("open directory", path) }
        defer { _ = close(fd) }
        if fsync(fd) != 0 { throw failure("fsync directory", path) }
    }

    /// Creates `directory` and the missing directories above it; returns the ones it
    /// created, outermost first (their parents must be fsynced for them to last).
    static func createDirectories(_ directory: URL) throws -> [URL] {
        var missing: [URL] = []
        var current = directory.standardizedFileURL
        while !FileManager.default.fileExists(atPath: current.path) {
            missing.append(current)
            let parent = current.deletingLastPathComponent()
            if parent.path == current.path { break }
            current = parent
        }
        guard !missing.isEmpty else { return [] }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return missing.reversed()
    }

    private static func writeAll(_ fd: Int32, _ buffer: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        while offset < buffer.count {
            let n = Foundation.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                return false
            }
            offset += n
        }
        return true
    }

    private static func failure(_ operation: String, _ path: String) -> TemplateError {
        .deploy("\(operation) \(path) failed: \(String(cString: strerror(errno)))")
    }
}
