/// The payload of a `.membership` log entry: every member of a Raft group with its replication
/// address, voters and learners. Raft reads it to know its group; the views show it as `members`.
///
/// On the wire: one line per member, `v|l id address`, voters then learners, each sorted, UTF-8.
public struct MembershipRecord: Sendable, Equatable {
    public var voters: [String: String]
    public var learners: [String: String]

    public init(voters: [String: String] = [:], learners: [String: String] = [:]) {
        self.voters = voters
        self.learners = learners
    }

    public func encoded() -> [UInt8] {
        var lines: [String] = []
        for id in voters.keys.sorted() { lines.append("v \(id) \(voters[id]!)") }
        for id in learners.keys.sorted() { lines.append("l \(id) \(learners[id]!)") }
        return Array(lines.joined(separator: "\n").utf8)
    }

    /// Decodes ``encoded()``; a malformed payload is an error naming the line, and so is any
    /// payload that is not exactly what ``encoded()`` gives for what it decodes to.
    public init(decoding payload: [UInt8]) throws {
        self.init()
        let text = String(decoding: payload, as: UTF8.self)
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 3, !parts[1].isEmpty, parts[0] == "v" || parts[0] == "l" else {
                throw StoreError(.malformedRecord, "membership entry has a malformed line \"\(line)\"")
            }
            if parts[0] == "v" {
                voters[String(parts[1])] = String(parts[2])
            } else {
                learners[String(parts[1])] = String(parts[2])
            }
        }
        // One membership has one encoding: anything else (bytes that are not UTF-8, an id twice,
        // lines out of order, empty lines) is damage, not a membership to guess at.
        guard encoded() == payload else {
            throw StoreError(.malformedRecord, "membership entry is not in its canonical form")
        }
    }
}
