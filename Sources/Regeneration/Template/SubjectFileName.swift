/// A subject as one safe path component: anything but lower-case ASCII letters, digits, `-`,
/// `_` and inner dots is percent-encoded, so `../../etc/x` stays a file name in its folder. A
/// name that would pass 200 bytes (file systems allow 255) keeps its first 150 bytes and ends
/// in `~` and a 64-bit FNV-1a hash of the whole subject, so every subject gets a file. The
/// empty subject is `%-` (a `%` the encoding never writes alone), not `%00`, which is NUL's.
///
/// Capital letters are encoded too (`Node` is `%4Eode`), and escapes are
/// always written with capital hex digits: two different subjects never get names that
/// differ only in case, so they keep a file each on a case-insensitive file system
/// (macOS's and Windows' defaults, and what an output synced elsewhere may land on).
enum SubjectFileName {
    static let maxBytes = 200

    static func make(for subject: String) -> String {
        var name = ""
        for (index, byte) in subject.utf8.enumerated() {
            let isSafe = (byte >= 0x30 && byte <= 0x39) || (byte >= 0x61 && byte <= 0x7A)
                || byte == 0x2D || byte == 0x5F || (byte == 0x2E && index > 0)
            if isSafe {
                name.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                name += "%" + hex(byte)
            }
        }
        if name.isEmpty { return "%-" }
        guard name.utf8.count > maxBytes else { return name }
        // Cut before a %XX escape rather than inside it.
        var prefix = Substring(name.prefix(150))
        if let percent = prefix.suffix(2).firstIndex(of: "%") { prefix = prefix[..<percent] }
        return "\(prefix)~\(String(fnv1a(subject.utf8), radix: 16))"
    }

    /// The file name as a URL path segment (its `%` escapes are themselves escaped).
    static func urlSegment(for subject: String) -> String {
        make(for: subject).replacingOccurrences(of: "%", with: "%25")
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0xF)]])
    }
}

/// The 64-bit FNV-1a hash of `bytes`: stable across processes and runs, unlike `Hasher`.
func fnv1a<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> UInt64 {
    bytes.reduce(0xcbf2_9ce4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
}
