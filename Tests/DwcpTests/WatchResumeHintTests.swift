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
}
