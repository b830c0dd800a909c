import Foundation

/// Deploys rendered files atomically as a set: everything is written to a staging
/// directory first; then each file is renamed into place, with the version
/// it replaces kept under `.regen/previous`. If any step fails, files already moved are
/// put back, so the output is either all old or all new.
struct ArtifactDeployer: Sendable {
    let outputRoot: URL

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
    /// - Throws: `TemplateError` or a file system error when a write or a move fails;
    ///   nothing is left half-deployed.
    func deploy(_ files: [String: String], executionID: String) throws {
        let staging = control.appendingPathComponent("staging/\(executionID)")
        defer { try? FileManager.default.removeItem(at: staging) }
        var staged: [(from: URL, to: URL, relative: String)] = []
        for (relative, content) in files.sorted(by: { $0.key < $1.key }) {
            let from = staging.appendingPathComponent(relative)
            try FileManager.default.createDirectory(at: from.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(content.utf8).write(to: from)
            staged.append((from, try destination(relative), relative))
        }
        try moveIntoPlace(staged)
    }

    private func moveIntoPlace(_ staged: [(from: URL, to: URL, relative: String)]) throws {
        let manager = FileManager.default
        var moved: [(to: URL, previous: URL?)] = []
        do {
            for file in staged {
                try manager.createDirectory(at: file.to.deletingLastPathComponent(), withIntermediateDirectories: true)
                var previous: URL?
                if manager.fileExists(atPath: file.to.path) {
                    let keep = control.appendingPathComponent("previous/\(file.relative)")
                    try manager.createDirectory(at: keep.deletingLastPathComponent(), withIntermediateDirectories: true)
                    try? manager.removeItem(at: keep)
                    try manager.copyItem(at: file.to, to: keep)
                    previous = keep
                }
                if rename(file.from.path, file.to.path) != 0 { throw TemplateError.deploy("rename to \(file.relative) failed (errno \(errno))") }
                moved.append((file.to, previous))
            }
        } catch {
            for file in moved.reversed() {
                if let previous = file.previous { _ = rename(previous.path, file.to.path) } else { try? manager.removeItem(at: file.to) }
            }
            throw error
        }
    }
}
