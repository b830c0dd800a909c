import Foundation

/// Deploys rendered files atomically as a set: everything is written to a staging
/// directory first; then each file is renamed into place, with the version it replaces
/// kept under `.regen/previous` (a hard link to it, not a copy). If any step fails, files
/// already moved are put back, so the output is either all old or all new.
///
/// With `durability: .fsync` the staged files and their directories are fsynced before
/// the renames, and every directory a rename or a new directory changed after them: when
/// ``deploy(_:executionID:)`` returns, the new set survives a power loss.
struct ArtifactDeployer: Sendable {
    let outputRoot: URL
    let durability: Durability

    private var control: URL { outputRoot.appendingPathComponent(".regen") }

    /// The path for `relative` under the output root.
    /// - Throws: `TemplateError.deploy` if it would leave the output root.
    func destination(_ relative: String) throws -> URL {
        let root = outputRoot.standardizedFileURL.path
        let target = outputRoot.appendingPathComponent(relative).standardizedFileURL
        guard target.path.hasPrefix(root + "/"), !relative.split(separator: "/").contains(".."),
            !target.path.hasPrefix(control.standardizedFileURL.path + "/")
        else { throw TemplateError.deploy("'\(relative)' is outside the output directory") }
        return target
    }

    /// Stages and moves `files` (relative path → content, already validated) into place.
    /// - Throws: `TemplateError` or a file system error when a write, an fsync or a move
    ///   fails; nothing is left half-deployed.
    func deploy(_ files: [String: String], executionID: String) throws {
        let staging = control.appendingPathComponent("staging/\(executionID)")
        defer { try? FileManager.default.removeItem(at: staging) }
        var staged: [(from: URL, to: URL, relative: String)] = []
        var stagingDirectories: Set<String> = []
        for (relative, content) in files.sorted(by: { $0.key < $1.key }) {
            let to = try destination(relative)
            let from = staging.appendingPathComponent(relative)
            try FileManager.default.createDirectory(at: from.deletingLastPathComponent(), withIntermediateDirectories: true)
            try DurableFiles.write(content.utf8, to: from.path)
            stagingDirectories.insert(from.deletingLastPathComponent().path)
            staged.append((from, to, relative))
        }
        if durability == .fsync {
            try DurableFiles.sync(staged.map(\.from.path))
            for directory in stagingDirectories.sorted() { try DurableFiles.syncDirectory(directory) }
        }
        let changed = try moveIntoPlace(staged)
        if durability == .fsync { for directory in changed.sorted() { try DurableFiles.syncDirectory(directory) } }
    }

    /// Renames each staged file into place; returns the directories whose entries changed.
    private func moveIntoPlace(_ staged: [(from: URL, to: URL, relative: String)]) throws -> Set<String> {
        var changed: Set<String> = []
        var moved: [(to: URL, previous: URL?)] = []
        do {
            for file in staged {
                for created in try DurableFiles.createDirectories(file.to.deletingLastPathComponent()) {
                    changed.insert(created.deletingLastPathComponent().path)
                }
                let previous = try keepPrevious(of: file.to, as: file.relative)
                if rename(file.from.path, file.to.path) != 0 {
                    throw TemplateError.deploy("rename to \(file.relative) failed: \(String(cString: strerror(errno)))")
                }
                changed.insert(file.to.deletingLastPathComponent().path)
                moved.append((file.to, previous))
            }
        } catch {
            for file in moved.reversed() {
                if let previous = file.previous { _ = rename(previous.path, file.to.path) } else { _ = unlink(file.to.path) }
            }
            throw error
        }
        return changed
    }

    /// Keeps the file now at `target` under `.regen/previous` as a second name of the same
    /// file (a hard link), so nothing is copied and `target` never stops existing.
    /// - Returns: the kept name, or nil when there was no file.
    private func keepPrevious(of target: URL, as relative: String) throws -> URL? {
        guard FileManager.default.fileExists(atPath: target.path) else { return nil }
        let keep = control.appendingPathComponent("previous/\(relative)")
        _ = try DurableFiles.createDirectories(keep.deletingLastPathComponent())
        if unlink(keep.path) != 0 && errno != ENOENT {
            throw TemplateError.deploy("removing the previous version of \(relative) failed: \(String(cString: strerror(errno)))")
        }
        if link(target.path, keep.path) != 0 {
            throw TemplateError.deploy(
                "keeping the previous version of \(relative) (a hard link under .regen/previous) failed: \(String(cString: strerror(errno)))")
        }
        return keep
    }
}
