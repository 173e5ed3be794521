import Store
import Synchronization

/// The answers this member's clients wait for, read by the apply loop inside the transaction that
/// applies their intents (``ViewStore/apply(_:answering:)``).
///
/// An intent's submitter asks for its answer as soon as it knows where its entry sits, before it
/// commits (``want(_:_:)``, from ``Consensus/propose(_:appliesOnce:appended:)``); the apply loop
/// takes the wanted indexes of each batch before applying it (``wanted(in:)``), answers those whose
/// entry is the intent asked about, and leaves the answers here (``deliver(_:)``); the submitter
/// takes its own once the index is applied (``take(_:for:)``) and forgets it whatever happens
/// (``forget(_:for:)``). An answer not here (asked for after its batch applied: a one-member region
/// knows the index only once committed) is read from the views, as it would be without this.
final class IntentAnswers: Sendable {
    /// What a submitter asked for, and the answer once the apply read it.
    private struct Slot {
        var request: IntentAnswer.Request
        var answer: IntentAnswer?
    }

    private struct State {
        var slots: [UInt64: Slot] = [:]
        /// Answers taken as read in the apply, and answers their submitters had to read afterwards
        /// (``noteReadAfterwards()``): for tests, and for what BENCHMARKS.md says of the path.
        var taken = 0
        var readAfterwards = 0
    }

    private let state = Mutex(State())

    /// Asks for the answer of the intent proposed at `index`.
    func want(_ index: UInt64, _ request: IntentAnswer.Request) {
        state.withLock { $0.slots[index] = Slot(request: request) }
    }

    /// The answers wanted for indexes in `range` not answered yet.
    func wanted(in range: ClosedRange<UInt64>) -> [UInt64: IntentAnswer.Request] {
        state.withLock { state in
            var found: [UInt64: IntentAnswer.Request] = [:]
            // Few at a time (one per client waiting): walk them, not the range.
            for (index, slot) in state.slots where slot.answer == nil && range.contains(index) {
                found[index] = slot.request
            }
            return found
        }
    }

    /// Leaves `answers` for those still waiting for them (one that stopped waiting gets none).
    func deliver(_ answers: [UInt64: IntentAnswer]) {
        guard !answers.isEmpty else { return }
        state.withLock { state in
            for (index, answer) in answers where state.slots[index] != nil { state.slots[index]?.answer = answer }
        }
    }

    /// The answer left for `index` for the intent `request` is about, nil when there is none (yet).
    func take(_ index: UInt64, for request: IntentAnswer.Request) -> IntentAnswer? {
        state.withLock { state in
            guard let slot = state.slots[index], slot.request.payload == request.payload, let answer = slot.answer
            else { return nil }
            state.slots[index] = nil
            state.taken += 1
            return answer
        }
    }

    /// Stops waiting for the answer of `index` for `request`: a slot another submitter took over
    /// since (another leader's entry took the index, and this member proposed another intent there)
    /// stays.
    func forget(_ index: UInt64, for request: IntentAnswer.Request) {
        state.withLock { state in
            if state.slots[index]?.request.payload == request.payload { state.slots[index] = nil }
        }
    }

    /// Counts an answer its submitter read from the views after the apply.
    func noteReadAfterwards() {
        state.withLock { $0.readAfterwards += 1 }
    }

    /// How many answers are wanted or held (none once every submitter is done), and how many were
    /// taken as read in the apply or read afterwards.
    var counts: (held: Int, taken: Int, readAfterwards: Int) {
        state.withLock { ($0.slots.count, $0.taken, $0.readAfterwards) }
    }
}
