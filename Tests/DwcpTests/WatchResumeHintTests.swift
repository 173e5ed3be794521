import Node
import Store
import Testing

@testable import dwcp

/// Where `dwcp watch` tells a user to go on after its stream ended early.
@Suite struct WatchResumeHintTests {
    static let record = #"{"log_index":139,"term":2,"kind":"host.added","at":1,"record":{"name":"h1"}}"#

    @Test("a stream that broke off after a record says to go on from the next index")
    func brokenStreamGoesOnAfterTheLastRecord() {
        let error = CLIError(.unreachable, "the node is shutting down")
        let hinted = Watch.withResumeHint(error, lastLine: Self.record, fromIndex: nil)
        #expect(hinted.message == "the node is shutting down; to go on: dwcp watch --from-index 140")
    }

    @Test(
        "a stream ended because the log was compacted past it keeps its advice to re-list, with no index that is gone")
    func compactedStreamReLists() {
        let message = "compacted: entries before 251 were compacted away; re-list from index 251"
        let hinted = Watch.withResumeHint(CLIError(.refused, message), lastLine: Self.record, fromIndex: nil)
        #expect(hinted.message == message)
    }

    @Test("a stream ended by damage to the node's log says no index to go on from: it would meet the damage again")
    func damagedLogGivesNoResumeHint() {
        let message = "log entry 140 is damaged: checksum mismatch (stored 0x1, computed 0x2)"
        let hinted = Watch.withResumeHint(CLIError(.refused, message), lastLine: Self.record, fromIndex: nil)
        #expect(hinted.message == message)
    }

    @Test("a verify's marker says it is one in the text lines; another no-op says nothing more")
    func markerInText() throws {
        let marker = try JSONValue.parse(#"{"log_index":7,"term":2,"kind":"noop","marker":"views-digest"}"#)
        #expect(Watch.text(marker, line: "") == "7\tnoop\tmarker=views-digest")
        let plain = try JSONValue.parse(#"{"log_index":8,"term":2,"kind":"noop"}"#)
        #expect(Watch.text(plain, line: "") == "8\tnoop\t")
    }

    @Test("a text line of a start or stop says which state was asked for")
    func desiredStateInText() throws {
        let stop = try JSONValue.parse(
            #"{"log_index":9,"term":2,"kind":"vm.desired_state_set","record":{"name":"web-1","desired_state":"stopped"}}"#
        )
        #expect(Watch.text(stop, line: "") == "9\tvm.desired_state_set\tweb-1 desired_state=stopped")
        // (Only there: a VM's creation names its desired state too.)
        let created = try JSONValue.parse(
            #"{"log_index":10,"term":2,"kind":"vm.created","record":{"name":"web-1","desired_state":"running"}}"#)
        #expect(Watch.text(created, line: "") == "10\tvm.created\tweb-1")
    }

    @Test(
        "the text format shows what each kind of record says: a reported state, a compaction's index, an unreadable record's error"
    )
    func textShowsEachKindsFields() throws {
        func text(_ index: UInt64, _ body: Record.Body) -> String {
            let entry = LogEntry(index: index, term: 1, kind: .record, payload: Record(at: 1, body).encoded())
            let line = Node.watchLine(entry)
            return Watch.text(line, line: line.serialized())
        }
        #expect(
            text(
                17, .vmStateReported(VMStateReported(vm: "boom", host: "h1", state: "crashed", reason: "triple fault")))
                == "17\tvm.state_reported\tboom state=crashed host=h1 reason=\"triple fault\"")
        #expect(
            text(90, .historyCompacted(HistoryCompacted(beforeIndex: 40))) == "90\thistory.compacted\tbefore_index=40")
        #expect(
            text(2, .regionIdentified(RegionIdentified(regionID: 255)))
                == "2\tregion.identified\tregion_id=00000000000000ff")
        #expect(
            text(6, .vmDesiredStateSet(VMDesiredStateSet(name: "w", desiredState: .stopped)))
                == "6\tvm.desired_state_set\tw desired_state=stopped")
        let unreadable = Node.watchLine(LogEntry(index: 5, term: 1, kind: .record, payload: [0xFF, 0x01]))
        let said = Watch.text(unreadable, line: unreadable.serialized())
        #expect(said.hasPrefix("5\t?\terror=\"") && said.count > 12, "\(said)")
    }
}
