/// The binary encoding of records.
///
/// Layout: `codec version (1 byte) | record type tag (varint) | tagged fields`. Fields 1–9 belong
/// to the envelope (1 `at`, 2 `request_id`); 10 and up to the record type. The rules that let the
/// encoding evolve without breaking old logs:
/// - a field number is never reused for another meaning;
/// - a new field is optional for readers: absent means its documented default;
/// - readers skip fields they do not know, so a newer writer does not break an older reader;
/// - a change no default can express gets a new record type tag.
/// An unknown codec version or type tag is an error naming the entry's index: the node refuses to
/// apply what it cannot read rather than skip it.
extension Record {
    public static let codecVersion: UInt8 = 1

    public func encoded() -> [UInt8] {
        var writer = FieldWriter()
        writer.write(1, at)
        if let requestID { writer.write(2, requestID) }
        switch body {
        case .hostAdded(let r): r.encode(into: &writer)
        case .hostRemoved(let r): r.encode(into: &writer)
        case .vmCreated(let r): r.encode(into: &writer)
        case .vmDesiredStateSet(let r): r.encode(into: &writer)
        case .vmDeleted(let r): r.encode(into: &writer)
        case .vmPlaced(let r): r.encode(into: &writer)
        case .vmUnschedulable(let r): r.encode(into: &writer)
        case .vmStateReported(let r): r.encode(into: &writer)
        case .hostLabelsSet(let r): r.encode(into: &writer)
        case .historyCompacted(let r): r.encode(into: &writer)
        case .regionIdentified(let r): r.encode(into: &writer)
        case .hostStateReported(let r): r.encode(into: &writer)
        case .hostEvacuated(let r): r.encode(into: &writer)
        }
        var bytes: [UInt8] = [Self.codecVersion]
        var tag = FieldWriter()
        tag.writeVarint(body.tag)
        bytes.append(contentsOf: tag.bytes)
        bytes.append(contentsOf: writer.bytes)
        return bytes
    }

    /// Decodes a record; `index` names the log entry in errors.
    public init(decoding bytes: [UInt8], index: UInt64) throws {
        do {
            try self.init(decoding: bytes)
        } catch let error as StoreError {
            throw StoreError(error.code, "log entry \(index): \(error.message)", index: index)
        }
    }

    public init(decoding bytes: [UInt8]) throws {
        let (tag, position) = try Self.typeTag(bytes)
        let name = Self.kindName(tag: tag) ?? "record type \(tag)"
        let fields = try FieldReader(bytes[position...], context: name)
        let at = fields.int64(1) ?? 0
        let requestID = fields.string(2)
        let body: Body
        switch tag {
        case 1: body = .hostAdded(try HostAdded(fields))
        case 2: body = .hostRemoved(try HostRemoved(fields))
        case 3: body = .vmCreated(try VMCreated(fields))
        case 4: body = .vmDesiredStateSet(try VMDesiredStateSet(fields))
        case 5: body = .vmDeleted(try VMDeleted(fields))
        case 6: body = .vmPlaced(try VMPlaced(fields))
        case 7: body = .vmUnschedulable(try VMUnschedulable(fields))
        case 8: body = .vmStateReported(try VMStateReported(fields))
        case 9: body = .hostLabelsSet(try HostLabelsSet(fields))
        case HistoryCompacted.tag: body = .historyCompacted(try HistoryCompacted(fields))
        case RegionIdentified.tag: body = .regionIdentified(try RegionIdentified(fields))
        case HostStateReported.tag: body = .hostStateReported(try HostStateReported(fields))
        case HostEvacuated.tag: body = .hostEvacuated(try HostEvacuated(fields))
        default:
            throw StoreError(.unknownRecord, "unknown record type \(tag) (written by a newer dwcp?)")
        }
        self.init(at: at, requestID: requestID, body)
    }

    /// Whether `payload` is a `history.compacted` record, read from its type tag alone: applying
    /// one deletes up to tens of thousands of rows, so the node applies it off its event loop.
    public static func isHistoryCompaction(_ payload: [UInt8]) -> Bool {
        (try? typeTag(payload))?.tag == HistoryCompacted.tag
    }

    /// The `region.identified` record `payload` is, read only when its type tag says so; nil for
    /// any other record (or a payload that does not decode).
    public static func regionIdentified(_ payload: [UInt8]) -> RegionIdentified? {
        guard (try? typeTag(payload))?.tag == RegionIdentified.tag,
            case .regionIdentified(let record)? = try? Record(decoding: payload).body
        else { return nil }
        return record
    }

    /// The record's codec version, checked, and its type tag; with where the fields start.
    static func typeTag(_ bytes: [UInt8]) throws -> (tag: UInt64, fieldsStart: Int) {
        guard let version = bytes.first else {
            throw StoreError(.malformedRecord, "empty record")
        }
        guard version == Self.codecVersion else {
            throw StoreError(
                .unsupportedVersion,
                "record codec version \(version) is not readable by this dwcp (it reads version \(Self.codecVersion))")
        }
        var position = 1
        let tag = try FieldReader.varint(bytes[...], at: &position, context: "record type")
        return (tag, position)
    }

    static func kindName(tag: UInt64) -> String? {
        switch tag {
        case 1: "host.added"
        case 2: "host.removed"
        case 3: "vm.created"
        case 4: "vm.desired_state_set"
        case 5: "vm.deleted"
        case 6: "vm.placed"
        case 7: "vm.unschedulable"
        case 8: "vm.state_reported"
        case 9: "host.labels_set"
        case HistoryCompacted.tag: "history.compacted"
        case RegionIdentified.tag: "region.identified"
        case HostStateReported.tag: "host.state_reported"
        case HostEvacuated.tag: "host.evacuated"
        default: nil
        }
    }

    /// The whole record as JSON: kind, time, request id and the body's fields.
    public var json: JSONValue {
        var members: [(String, JSONValue)] = [("kind", .string(body.kindName)), ("at", .int(at))]
        if let requestID { members.append(("request_id", .string(requestID))) }
        members.append(("record", body.json))
        return .object(members)
    }
}
