/// Checks that a history of reads and writes on independent registers is linearizable: that
/// there is one order of the operations, consistent with real time, in which every read sees
/// the latest write. Each key is checked on its own (linearizability is compositional).
///
/// The search is Wing & Gong's with Lowe's memoization (as in Porcupine): walk the history's
/// call/return events, try to linearize each pending call, back-track on a return that was not
/// linearized in time, and never revisit a (set of linearized operations, register value) pair.
/// A write whose outcome is unknown returns "at infinity": it may take effect at any later point.
public enum LinearizabilityChecker {
    /// The keys whose history is not linearizable (empty when all are).
    public static func violations(in history: [RegisterOperation]) -> [String] {
        var byKey: [String: [RegisterOperation]] = [:]
        for operation in history {
            // A read that never returned has no effect and tells nothing.
            if case .read = operation.kind, operation.returnedAt == nil { continue }
            byKey[operation.key, default: []].append(operation)
        }
        return byKey.keys.sorted().filter { !isLinearizable(byKey[$0]!) }
    }

    private struct Event {
        var isCall: Bool
        var operation: Int
        var time: UInt64
        var previous: Int
        var next: Int
        var match: Int
    }

    private struct CacheKey: Hashable {
        var bits: [UInt64]
        var value: String?
    }

    static func isLinearizable(_ operations: [RegisterOperation]) -> Bool {
        // Build the event list: calls and returns in time order (a call before a return at the same time).
        var raw: [(time: UInt64, isCall: Bool, operation: Int)] = []
        for (index, operation) in operations.enumerated() {
            raw.append((operation.invokedAt, true, index))
            raw.append((operation.returnedAt ?? UInt64.max, false, index))
        }
        raw.sort { a, b in
            if a.time != b.time { return a.time < b.time }
            if a.isCall != b.isCall { return a.isCall }
            return a.operation < b.operation
        }
        // Doubly linked list with a sentinel head at index 0.
        var events = [Event(isCall: false, operation: -1, time: 0, previous: -1, next: 1, match: -1)]
        var callPosition: [Int: Int] = [:]
        for (offset, item) in raw.enumerated() {
            let position = offset + 1
            events.append(
                Event(
                    isCall: item.isCall, operation: item.operation, time: item.time, previous: position - 1,
                    next: position + 1 <= raw.count ? position + 1 : -1, match: -1))
            if item.isCall {
                callPosition[item.operation] = position
            } else {
                let call = callPosition[item.operation]!
                events[call].match = position
                events[position].match = call
            }
        }
        if raw.isEmpty { return true }

        func lift(_ call: Int) {
            let ret = events[call].match
            events[events[call].previous].next = events[call].next
            if events[call].next != -1 { events[events[call].next].previous = events[call].previous }
            events[events[ret].previous].next = events[ret].next
            if events[ret].next != -1 { events[events[ret].next].previous = events[ret].previous }
        }
        func unlift(_ call: Int) {
            let ret = events[call].match
            events[events[ret].previous].next = ret
            if events[ret].next != -1 { events[events[ret].next].previous = ret }
            events[events[call].previous].next = call
            if events[call].next != -1 { events[events[call].next].previous = call }
        }

        var linearized = [UInt64](repeating: 0, count: (operations.count + 63) / 64)
        var cache: Set<CacheKey> = []
        var stack: [(call: Int, value: String?)] = []
        var value: String? = nil
        var cursor = events[0].next
        while events[0].next != -1 {
            guard cursor != -1 else { return false }
            let event = events[cursor]
            if event.isCall {
                let operation = operations[event.operation]
                var applies = false
                var newValue = value
                switch operation.kind {
                case .write(let written):
                    applies = true
                    newValue = written
                case .read(let seen):
                    applies = seen == value
                }
                if applies {
                    var bits = linearized
                    bits[event.operation / 64] |= 1 << UInt64(event.operation % 64)
                    if cache.insert(CacheKey(bits: bits, value: newValue)).inserted {
                        stack.append((cursor, value))
                        value = newValue
                        linearized = bits
                        lift(cursor)
                        cursor = events[0].next
                        continue
                    }
                }
                cursor = event.next
            } else {
                // A return whose call is not linearized yet: undo the last choice.
                guard let (call, previousValue) = stack.popLast() else { return false }
                value = previousValue
                let operation = events[call].operation
                linearized[operation / 64] &= ~(1 << UInt64(operation % 64))
                unlift(call)
                cursor = events[call].next
            }
        }
        return true
    }
}
