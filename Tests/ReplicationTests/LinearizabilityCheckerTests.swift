import Testing

@testable import Simulation

@Suite struct LinearizabilityCheckerTests {
    func write(_ key: String, _ value: String, _ start: UInt64, _ end: UInt64?, client: Int = 0) -> RegisterOperation {
        RegisterOperation(client: client, key: key, kind: .write(value: value), invokedAt: start, returnedAt: end)
    }

    func read(_ key: String, _ value: String?, _ start: UInt64, _ end: UInt64, client: Int = 1) -> RegisterOperation {
        RegisterOperation(client: client, key: key, kind: .read(value: value), invokedAt: start, returnedAt: end)
    }

    @Test func sequentialHistoryIsLinearizable() {
        let history = [write("a", "1", 0, 10), read("a", "1", 20, 30), write("a", "2", 40, 50), read("a", "2", 60, 70)]
        #expect(LinearizabilityChecker.violations(in: history).isEmpty)
    }

    @Test func staleReadIsCaught() {
        let history = [write("a", "1", 0, 10), write("a", "2", 20, 30), read("a", "1", 40, 50)]
        #expect(LinearizabilityChecker.violations(in: history) == ["a"])
    }

    @Test func readOfNeverWrittenValueIsCaught() {
        #expect(LinearizabilityChecker.violations(in: [read("b", "9", 0, 5)]) == ["b"])
    }

    @Test func concurrentOperationsMayOrderEitherWay() {
        // The read overlaps the write: it may see the old or the new value.
        let old = [write("a", "1", 0, 10), write("a", "2", 20, 40), read("a", "1", 25, 35)]
        let new = [write("a", "1", 0, 10), write("a", "2", 20, 40), read("a", "2", 25, 35)]
        #expect(LinearizabilityChecker.violations(in: old).isEmpty)
        #expect(LinearizabilityChecker.violations(in: new).isEmpty)
    }

    @Test func unknownWriteMayTakeEffectLaterOrNever() {
        let later = [write("a", "1", 0, nil), read("a", nil, 10, 20), read("a", "1", 30, 40)]
        let never = [write("a", "1", 0, nil), read("a", nil, 10, 20), read("a", nil, 30, 40)]
        #expect(LinearizabilityChecker.violations(in: later).isEmpty)
        #expect(LinearizabilityChecker.violations(in: never).isEmpty)
        // But once seen, it cannot be unseen.
        let flicker = [write("a", "1", 0, nil), read("a", "1", 10, 20), read("a", nil, 30, 40)]
        #expect(LinearizabilityChecker.violations(in: flicker) == ["a"])
    }

    @Test func keysAreCheckedIndependently() {
        let history = [
            write("a", "1", 0, 10), write("b", "2", 0, 10), read("a", "1", 20, 30), read("b", "1", 20, 30),
        ]
        #expect(LinearizabilityChecker.violations(in: history) == ["b"])
    }
}
