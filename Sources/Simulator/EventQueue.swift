/// A priority queue of simulation events, earliest first; events at the same time keep the
/// order they were scheduled in, so a run is a pure function of its seed.
///
/// The heap orders small plain keys; the events themselves wait in slots beside it.
struct EventQueue<Event> {
    private struct Key {
        var time: UInt64
        var sequence: UInt64
        var slot: Int
    }

    private var heap: [Key] = []
    private var slots: [Event?] = []
    private var freeSlots: [Int] = []
    private var sequence: UInt64 = 0

    var isEmpty: Bool { heap.isEmpty }
    var count: Int { heap.count }

    mutating func schedule(_ event: Event, at time: UInt64) {
        sequence += 1
        let slot: Int
        if let free = freeSlots.popLast() {
            slot = free
            slots[slot] = event
        } else {
            slot = slots.count
            slots.append(event)
        }
        heap.append(Key(time: time, sequence: sequence, slot: slot))
        var child = heap.count - 1
        let item = heap[child]
        while child > 0 {
            let parent = (child - 1) / 2
            guard Self.precedes(item, heap[parent]) else { break }
            heap[child] = heap[parent]
            child = parent
        }
        heap[child] = item
    }

    mutating func pop() -> (time: UInt64, event: Event)? {
        guard let top = heap.first else { return nil }
        let last = heap.removeLast()
        if !heap.isEmpty {
            var parent = 0
            let count = heap.count
            while true {
                let left = 2 * parent + 1
                guard left < count else { break }
                let right = left + 1
                let child = right < count && Self.precedes(heap[right], heap[left]) ? right : left
                guard Self.precedes(heap[child], last) else { break }
                heap[parent] = heap[child]
                parent = child
            }
            heap[parent] = last
        }
        let event = slots[top.slot]!
        slots[top.slot] = nil
        freeSlots.append(top.slot)
        return (top.time, event)
    }

    private static func precedes(_ a: Key, _ b: Key) -> Bool {
        a.time != b.time ? a.time < b.time : a.sequence < b.sequence
    }
}
