import Foundation

/// An independent check of the timestamps `ChangeEvent.decode` takes (README, "Wire
/// format"), by regular expression and calendar arithmetic written out plainly.
public enum StrictTimestamp {
    private static let pattern = try! NSRegularExpression(
        pattern: #"^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]{1,9})?(Z|z|([+-])([0-9]{2}):([0-9]{2}))$"#)

    /// Whether `text` is an RFC 3339 date-time regen takes.
    public static func isValid(_ text: String) -> Bool {
        let range = NSRange(text.startIndex..., in: text)
        guard let match = pattern.firstMatch(in: text, range: range) else { return false }
        func number(_ group: Int) -> Int? {
            guard let range = Range(match.range(at: group), in: text) else { return nil }
            return Int(text[range])
        }
        guard let year = number(1), let month = number(2), let day = number(3), let hour = number(4), let minute = number(5),
            let second = number(6)
        else { return false }
        let leap = year % 400 == 0 || (year % 4 == 0 && year % 100 != 0)
        let monthLengths = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        guard (1...12).contains(month), (1...monthLengths[month - 1]).contains(day) else { return false }
        guard hour <= 23, minute <= 59, second <= 60 else { return false }
        if let offsetHours = number(10), let offsetMinutes = number(11) {
            guard offsetMinutes <= 59, offsetHours * 60 + offsetMinutes <= 18 * 60 else { return false }
        }
        return true
    }

    /// Whether `date` falls before 1582-10-15, where Foundation's calendar turns Julian
    /// and regen's stays proleptic Gregorian (RFC 3339), so the two disagree by design.
    public static func isBeforeGregorianCutover(_ date: Date) -> Bool {
        date < Date(timeIntervalSince1970: -12_219_292_800)
    }
}
