import Foundation
import Orchestration

/// Decodes one input with `ChangeEvent.decode` and with the Foundation-based
/// `ReferenceDecoder`, and says how they disagree beyond what the README documents.
///
/// The rules: input that is not strict JSON (`StrictJSON`) must be refused as a whole
/// (field nil). Otherwise both must accept or both refuse, except that a timestamp
/// Foundation takes but `StrictTimestamp` does not must be refused naming `timestamp`.
/// Accepted events must be equal, timestamps before the Gregorian cutover aside. Refusals
/// must name the same top-level field (within `properties` or `metadata` Foundation's
/// choice among several bad values follows hash order).
public enum DecoderDifferential {
    /// What the two decoders did with one input.
    public struct Outcome: Sendable {
        public let decoded: Result<ChangeEvent, InvalidChangeEvent>
        public let reference: Result<ChangeEvent, InvalidChangeEvent>
        /// How they disagree, or nil.
        public let disagreement: String?
    }

    /// Runs both decoders on `bytes`.
    public static func compare(_ bytes: [UInt8]) -> Outcome {
        let decoded = Result { () throws(InvalidChangeEvent) in try ChangeEvent.decode(bytes) }
        let reference = Result { () throws(InvalidChangeEvent) in try ReferenceDecoder.decode(bytes) }
        return Outcome(decoded: decoded, reference: reference, disagreement: disagreement(bytes, decoded, reference))
    }

    private static func disagreement(
        _ bytes: [UInt8], _ decoded: Result<ChangeEvent, InvalidChangeEvent>, _ reference: Result<ChangeEvent, InvalidChangeEvent>
    ) -> String? {
        if !bytes.isEmpty && bytes.count <= ChangeEvent.defaultMaxBytes, let violation = StrictJSON.violation(in: bytes) {
            switch decoded {
            case .success: return "accepted input that is not strict JSON (\(violation))"
            case .failure(let error) where error.field != nil:
                return "refused input that is not strict JSON (\(violation)) naming field \(error.field!) instead of the record"
            case .failure: return nil
            }
        }
        switch (decoded, reference) {
        case (.success(let event), .success(let expected)):
            var event = event
            if StrictTimestamp.isBeforeGregorianCutover(expected.timestamp) { event.timestamp = expected.timestamp }
            return event == expected ? nil : "decoded \(event) but the reference decoded \(expected)"
        case (.failure(let error), .success(let expected)):
            if refusesTimestampOnPurpose(bytes, error) { return nil }
            return "refused (\(error)) what the reference accepts: \(expected)"
        case (.success(let event), .failure(let error)):
            return "accepted \(event) though the reference refuses: \(error)"
        case (.failure(let error), .failure(let expected)):
            // The reference took the timestamp and refused something it checks after it:
            // a later field, or a value check (an empty id, a missing predicate...).
            if refusesTimestampOnPurpose(bytes, error), let field = expected.field,
                !["id", "change_type", "timestamp"].contains(topLevel(field)) || expected.reason == "must not be empty"
            {
                return nil
            }
            let field = error.field.map(topLevel)
            let expectedField = expected.field.map(topLevel)
            return field == expectedField ? nil : "refused naming \(error) where the reference names \(expected)"
        }
    }

    /// Whether `error` refuses a timestamp that `StrictTimestamp` does not take either.
    private static func refusesTimestampOnPurpose(_ bytes: [UInt8], _ error: InvalidChangeEvent) -> Bool {
        guard error.field == "timestamp", let text = StrictJSON.topLevelStrings(in: bytes)?["timestamp"] else { return false }
        return !StrictTimestamp.isValid(text)
    }

    /// `properties` for `properties.a[2]`.
    private static func topLevel(_ path: String) -> String {
        String(path.prefix { $0 != "." && $0 != "[" })
    }
}
