import Foundation
import Orchestration

/// One libFuzzer input: whatever the bytes, decoding either yields an event that survives
/// an encode/decode round trip, or refuses them with a reason. A crash, a hang, a memory
/// error (AddressSanitizer) or a failed check below is a finding.
@_cdecl("LLVMFuzzerTestOneInput")
func decoderFuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let event: ChangeEvent
    do {
        event = try ChangeEvent.decode(bytes)
    } catch {
        precondition(!error.reason.isEmpty, "refused without a reason")
        return 0
    }
    let encoded: [UInt8]
    do {
        encoded = Array(try JSONEncoder().encode(event))
    } catch {
        preconditionFailure("a decoded event does not encode: \(error)")
    }
    do {
        var again = try ChangeEvent.decode(encoded, maxBytes: .max)
        // Timestamps are written rounded to the millisecond.
        precondition(abs(again.timestamp.timeIntervalSince(event.timestamp)) <= 0.000_501, "timestamp drifted by more than rounding to milliseconds")
        again.timestamp = event.timestamp
        precondition(again == event, "round trip changed the event")
    } catch {
        preconditionFailure("an encoded event does not decode: \(error)")
    }
    return 0
}
