import DecoderOracle
import Foundation
import Orchestration

/// One libFuzzer input: `ChangeEvent.decode` and the Foundation-based reference decoder
/// must agree on it, as `DecoderDifferential` spells out (the README's deliberate
/// differences aside). A disagreement, a crash, a hang or a memory error is a finding.
@_cdecl("LLVMFuzzerTestOneInput")
func differentialFuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let disagreement = DecoderDifferential.compare(bytes).disagreement {
        // Said before stopping: a release build's precondition message can be lost.
        FileHandle.standardError.write(Data("the decoders disagree: \(disagreement)\n".utf8))
        preconditionFailure("the decoders disagree")
    }
    return 0
}
