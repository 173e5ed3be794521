import TestSupport
import Testing

@testable import Store

@Suite struct RecordCodecTests {
    static let samples: [Record] = [
        Record(
            at: 1, requestID: "r-1",
            .hostAdded(
                HostAdded(name: "h1", region: "eu", cpus: 8, memoryBytes: 1 << 34, labels: ["rack": "a", "ssd": "yes"]))
        ),
        Record(at: 2, .hostRemoved(HostRemoved(name: "h1"))),
        Record(
            at: 3, requestID: "r-3",
            .vmCreated(
                VMCreated(
                    name: "web-1", region: "eu", cpus: 2, memoryBytes: 512 << 20, image: "builtin:hello",
                    labels: ["app": "web"], desiredState: .stopped))),
        Record(at: 4, .vmDesiredStateSet(VMDesiredStateSet(name: "web-1", desiredState: .running))),
        Record(at: 5, .vmDeleted(VMDeleted(name: "web-1"))),
        Record(at: 6, .vmPlaced(VMPlaced(vm: "web-1", host: "h1", explanation: "{\"policy\":\"best-fit\"}"))),
        Record(at: 7, .vmUnschedulable(VMUnschedulable(vm: "web-1", reason: "no host"))),
        Record(at: -8, .vmStateReported(VMStateReported(vm: "web-1", host: "h1", state: "running", reason: "ok"))),
        Record(at: 9, requestID: "r-9", .hostLabelsSet(HostLabelsSet(name: "h1", labels: ["rack": "b"]))),
        Record(at: 10, .historyCompacted(HistoryCompacted(beforeIndex: 1_234_567))),
        Record(at: 11, .regionIdentified(RegionIdentified(regionID: .max - 3))),
        Record(at: 12, .hostStateReported(HostStateReported(name: "h1", state: "ready", agent: "n2"))),
        Record(
            at: 13,
            .hostStateReported(
                HostStateReported(name: "h1", state: "not_ready", reason: "its member n2 has not answered for 10 s"))),
        Record(at: 14, requestID: "r-14", .hostEvacuated(HostEvacuated(name: "h1"))),
    ]

    @Test("every record type survives an encode/decode round trip", arguments: samples)
    func roundTrip(record: Record) throws {
        #expect(try Record(decoding: record.encoded()) == record)
    }

    @Test("a history.compacted record is told from its type tag alone; other records and garbage are not one")
    func historyCompactionTag() {
        #expect(
            Record.isHistoryCompaction(Record(at: 1, .historyCompacted(HistoryCompacted(beforeIndex: 9))).encoded()))
        for record in Self.samples where record.body.kindName != "history.compacted" {
            #expect(!Record.isHistoryCompaction(record.encoded()), "\(record.body.kindName)")
        }
        for garbage: [UInt8] in [[], [1], [2, 10], [1, 0x8a]] {
            #expect(!Record.isHistoryCompaction(garbage), "\(garbage)")
        }
    }

    @Test("equal records encode to equal bytes (labels are written in key order)")
    func deterministic() {
        let a = Record(
            at: 1,
            .hostAdded(
                HostAdded(name: "h", region: "r", cpus: 1, memoryBytes: 1, labels: ["b": "2", "a": "1", "c": "3"])))
        let b = Record(
            at: 1,
            .hostAdded(
                HostAdded(name: "h", region: "r", cpus: 1, memoryBytes: 1, labels: ["c": "3", "a": "1", "b": "2"])))
        #expect(a.encoded() == b.encoded())
    }

    /// Bytes of a `vm.created` record as written before fields 15 (labels) and 16 (desired_state)
    /// existed: codec version 1, type 3, at = 1700000000000, name "old-vm", region "eu", cpus 2,
    /// memory_bytes 268435456, image "builtin:hello". Kept as a literal so the test reads what an
    /// old log holds, not what today's encoder writes.
    static let vmCreatedBeforeLabels: [UInt8] = [
        0x01, 0x03,
        0x08, 0x80, 0xa0, 0xab, 0xfe, 0xf9, 0x62,
        0x52, 0x06, 0x6f, 0x6c, 0x64, 0x2d, 0x76, 0x6d,
        0x5a, 0x02, 0x65, 0x75,
        0x60, 0x04,
        0x68, 0x80, 0x80, 0x80, 0x80, 0x02,
        0x72, 0x0d, 0x62, 0x75, 0x69, 0x6c, 0x74, 0x69, 0x6e, 0x3a, 0x68, 0x65, 0x6c, 0x6c, 0x6f,
    ]

    @Test("a record written before a field existed reads with that field's default")
    func readsOlderVersion() throws {
        let record = try Record(decoding: Self.vmCreatedBeforeLabels, index: 7)
        #expect(record.at == 1_700_000_000_000)
        guard case .vmCreated(let vm) = record.body else {
            Issue.record("expected vm.created, got \(record.body.kindName)")
            return
        }
        #expect(vm == VMCreated(name: "old-vm", region: "eu", cpus: 2, memoryBytes: 256 << 20, image: "builtin:hello"))
        #expect(vm.labels.isEmpty)
        #expect(vm.desiredState == .running)
    }

    @Test("an old record in a real log applies to the views")
    func oldRecordInLogApplies() async throws {
        let dir = TemporaryDirectory()
        let log = try LogStore(path: dir.file("log"))
        try await log.append([
            LogEntry(
                index: 1, term: 1,
                payload: Record(at: 1, .hostAdded(HostAdded(name: "h1", region: "eu", cpus: 4, memoryBytes: 1 << 30)))
                    .encoded()),
            LogEntry(index: 2, term: 1, payload: Self.vmCreatedBeforeLabels),
        ])
        let views = try ViewStore(path: dir.file("views.sqlite"))
        try await views.apply(try log.entries(in: 1...2))
        let dump = try views.dump()
        #expect(dump.contains(#""name":"old-vm","region":"eu""#))
        #expect(dump.contains(#""desired_state":"running","actual_state":"pending""#))
    }

    @Test("fields a newer writer added are skipped by this reader")
    func skipsUnknownFields() throws {
        var bytes = Record(at: 9, .vmDeleted(VMDeleted(name: "x"))).encoded()
        var extra = FieldWriter()
        extra.write(99, "from the future")
        extra.write(98, UInt64(12345))
        bytes += extra.bytes
        #expect(try Record(decoding: bytes) == Record(at: 9, .vmDeleted(VMDeleted(name: "x"))))
    }

    @Test("an unknown record type is an error that names the entry")
    func unknownType() {
        let bytes: [UInt8] = [0x01, 0x7f, 0x08, 0x02]
        #expect {
            try Record(decoding: bytes, index: 42)
        } throws: { error in
            guard let e = error as? StoreError else { return false }
            return e.code == .unknownRecord && e.index == 42 && e.message.contains("log entry 42")
        }
    }

    @Test("an unknown codec version is refused, naming the entry")
    func unknownVersion() {
        var bytes = Record(at: 1, .vmDeleted(VMDeleted(name: "x"))).encoded()
        bytes[0] = 9
        #expect {
            try Record(decoding: bytes, index: 5)
        } throws: { error in
            (error as? StoreError)?.code == .unsupportedVersion
                && (error as? StoreError)?.message.contains("log entry 5") == true
        }
    }

    @Test("truncated records and missing required fields are clear errors")
    func malformed() {
        let full = Record(at: 1, .vmDeleted(VMDeleted(name: "some-vm"))).encoded()
        #expect(throws: StoreError.self) { try Record(decoding: Array(full.dropLast(3))) }
        let noName: [UInt8] = [0x01, 0x05, 0x08, 0x02]
        #expect {
            try Record(decoding: noName)
        } throws: { error in
            (error as? StoreError)?.message.contains("required field 10 (name)") == true
        }
        #expect(throws: StoreError.self) { try Record(decoding: []) }
    }
}

extension Record: CustomTestStringConvertible {
    public var testDescription: String { body.kindName }
}
