/// The numbers a record may carry into the views.
///
/// A member validates an intent before proposing it (the API's ranges, `Validation` in the node),
/// but the applier must not trust that every committed record passed there: a plain-TCP peer can
/// append what it likes, and a record that put a negative size or an overflowing sum into the
/// views would stop every member, at every start, for good (the views check refuses such values,
/// and a rebuild applies the same record again). So the applier holds each record to what the
/// views can hold, a bound that does not move with the API's policy: sizes, counts and times from
/// 0 to 2^53 (``ViewStore/largestColumnValue``). A record whose CPU count or memory size is outside
/// it is refused as it applies, alike on every member that runs this check, as an intent that no
/// longer fits is (views an older dwcp wrote such a value into fail the start's check and are
/// rebuilt); its time is clamped (``storableTime``).
extension Record {
    /// Why the record cannot apply (a CPU count or memory size outside what the views hold, in
    /// words); nil when it can.
    var valueOutOfBounds: String? {
        switch body {
        case .hostAdded(let r):
            return Self.outOfBounds(Int64(r.cpus), "CPU count") ?? Self.outOfBounds(r.memoryBytes, "memory size")
        case .vmCreated(let r):
            return Self.outOfBounds(Int64(r.cpus), "CPU count") ?? Self.outOfBounds(r.memoryBytes, "memory size")
        case .hostRemoved, .hostLabelsSet, .vmDesiredStateSet, .vmDeleted, .vmPlaced, .vmUnschedulable,
            .vmStateReported, .historyCompacted, .regionIdentified, .hostStateReported, .hostEvacuated:
            return nil
        }
    }

    /// The record's time as the views keep it (`intents.submitted_at`, `vm_events.at`,
    /// `vm_starts.at`): within their bounds. A time outside them is clamped, not refused: most
    /// records never write their time, and an older dwcp applied them all, so refusing them would
    /// make views upgraded in place differ from views rebuilt from the log.
    var storableTime: Int64 { min(max(at, Self.storable.lowerBound), Self.storable.upperBound) }

    /// What any size, count, time or duration of a record may be to go into the views.
    static let storable: ClosedRange<Int64> = 0...ViewStore.largestColumnValue

    private static func outOfBounds(_ value: Int64, _ what: String) -> String? {
        guard !storable.contains(value) else { return nil }
        return "the record's \(what) \(value) is outside 0 to \(ViewStore.largestColumnValue), what the views hold"
    }
}

extension VMStartMeasurement {
    /// Whether both durations are within what the views hold (0 to 2^53 microseconds). A report
    /// whose measurement is not still says what the VM does; the measurement is left out.
    var isWithinBounds: Bool {
        Record.storable.contains(firstEntryMicroseconds) && Record.storable.contains(bootMicroseconds)
    }
}
