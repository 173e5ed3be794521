import Store
import Synchronization

/// The answers this member's clients wait for, read by the apply loop inside the transaction that
/// applies their intents (``ViewStore/apply(_:answering:)``).
///
/// An intent's submitter asks for its answer as soon as it knows where its entry sits, before it
/// commits (``want(_:_:)``, from ``Consensus/propose(_:appliesOnce:appended:)``); the apply loop
/// takes the wanted indexes of each batch before applying it (``wanted(in:)``), answers those whose
/// entry is the intent asked about, and leaves the answers here (``deliver(_:)``); the submitter
/// takes its own once the index is applied (``take(_:)``) and forgets it whatever happens
/// (``forget(_:)``). An answer not here (asked for after its batch applied: a one-member region
/// knows the index only once committed) is read from the views, as it would be without this.
final class IntentAnswers: Sendable {
    private enum Slot {
        case wanted(IntentAnswer.Request)
        case answered(IntentAnswer)
    }

    private let slots = Mutex<[UInt64: Slot]>([:])

    /// Asks for the answer of the intent proposed at `index`.
    func want(_ index: UInt64, _ request: IntentAnswer.Request) {
        slots.withLock { $0[index] = .wanted(request) }
    }

    /// The answers wanted for indexes in `range` not answered yet.
    func wanted(in range: ClosedRange<UInt64>) -> [UInt64: IntentAnswer.Request] {
        slots.withLock { slots in
            var found: [UInt64: IntentAnswer.Request] = [:]
            // Few at a time (one per client waiting): walk them, not the range.
            for (index, slot) in slots where range.contains(index) {
                if case .wanted(let request) = slot { found[index] = request }
            }
            return found
        }
    }

    /// Leaves `answers` for those still waiting for them (one that stopped waiting gets none).
    func deliver(_ answers: [UInt64: IntentAnswer]) {
        guard !answers.isEmpty else { return }
        slots.withLock { slots in
            for (index, answer) in answers where slots[index] != nil { slots[index] = .answered(answer) }
        }
    }

    /// The answer left for `index`, nil when there is none (yet).
    func take(_ index: UInt64) -> IntentAnswer? {
        slots.withLock { slots in
            guard case .answered(let answer) = slots[index] else { return nil }
            slots[index] = nil
            return answer
        }
    }

    /// Stops waiting for the answer of `index`.
    func forget(_ index: UInt64) {
        _ = slots.withLock { $0.removeValue(forKey: index) }
    }

    /// How many answers are wanted or held (for tests: none once every submitter is done).
    var count: Int { slots.withLock { $0.count } }
}
