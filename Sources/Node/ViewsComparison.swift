import Store

/// The members' digests of their views at one verify marker, compared table by table: what
/// `dwcp cluster verify` prints, and what the leader's own check (`dwcp serve --verify-every`)
/// records.
///
/// A table's digest shared by more than half of the members asked is that table's reference, and
/// a member whose digest of the table differs from it is named with the table. A table no such
/// majority agrees on names no one: two members of three that disagree cannot tell which of them
/// is damaged. Members of different schema versions are not compared at all (their tables differ
/// by design).
public struct ViewsComparison: Sendable, Equatable {
    /// One member's answer: its views' schema version and tables' digests, or why it has none.
    public struct Answer: Sendable, Equatable {
        public var id: String
        public var schemaVersion: String
        /// By table name; nil when the member gave no digest.
        public var tables: [String: TableDigest]?
        public var error: String?
        /// The member will never have a digest of this marker (it skipped it, took it in a
        /// snapshot, or could not read its views): a new marker is needed, not another ask.
        public var gone: Bool

        public init(id: String, schemaVersion: String, tables: [TableDigest]) {
            self.id = id
            self.schemaVersion = schemaVersion
            self.tables = Dictionary(tables.map { ($0.table, $0) }, uniquingKeysWith: { first, _ in first })
            self.error = nil
            self.gone = false
        }

        /// A member's own digest.
        public init(id: String, digest: ViewsDigest) {
            self.init(id: id, schemaVersion: digest.schemaVersion, tables: digest.tables)
        }

        /// A member's answer to `GET /v1/views/digest`, or the reason it cannot be read.
        public init(id: String, digestAnswer body: JSONValue) {
            guard case .array(let rows)? = body["tables"] else {
                self.init(id: id, error: "its answer holds no tables: \(body.serialized())")
                return
            }
            var tables: [TableDigest] = []
            for row in rows {
                guard let table = TableDigest(json: row) else {
                    self.init(id: id, error: "its answer has a malformed table: \(row.serialized())")
                    return
                }
                tables.append(table)
            }
            self.init(id: id, schemaVersion: body["schema_version"]?.stringValue ?? "", tables: tables)
        }

        public init(id: String, error: String, gone: Bool = false) {
            self.id = id
            self.schemaVersion = ""
            self.tables = nil
            self.error = error
            self.gone = gone
        }
    }

    /// What the comparison says of one member.
    public enum Verdict: Sendable, Equatable {
        /// Every table matches its reference.
        case same
        /// These tables differ from the digest most members share.
        case differs([String])
        /// No digest of these tables is shared by more than half of the members.
        case noMajority([String])
        /// Too few members answered to compare its tables with anything.
        case uncompared
        /// It gave no digest, for this reason.
        case unanswered(String)
        /// The members run several schema versions: nothing was compared.
        case otherSchemas
    }

    /// The marker's log index.
    public let logIndex: UInt64
    /// Every member asked, by id.
    public let answers: [Answer]
    /// Each table's digest more than half of the members share.
    public let references: [String: String]
    /// Tables whose digests differ with no majority for any.
    public let tablesWithoutMajority: [String]
    /// The schema versions of the members that answered.
    public let schemaVersions: [String]

    public init(logIndex: UInt64, answers: [Answer]) {
        self.logIndex = logIndex
        self.answers = answers.sorted { $0.id < $1.id }
        let hashed = answers.filter { $0.tables != nil }
        schemaVersions = Set(hashed.map(\.schemaVersion)).sorted()
        var references: [String: String] = [:]
        var split: [String] = []
        for name in Set(hashed.flatMap { $0.tables!.keys }).sorted() {
            let votes = Dictionary(grouping: hashed, by: { $0.tables![name]?.sha256 ?? "" })
            if let (digest, _) = votes.first(where: { $0.value.count * 2 > answers.count }) {
                references[name] = digest
            } else if votes.count > 1 {
                split.append(name)
            }
        }
        self.references = references
        tablesWithoutMajority = split
    }

    /// Whether the members' digests can be compared: they run one schema version.
    public var comparable: Bool { schemaVersions.count <= 1 }

    /// The members that answered with a digest.
    public var answered: [Answer] { answers.filter { $0.tables != nil } }

    /// The members that gave no digest.
    public var unanswered: [Answer] { answers.filter { $0.tables == nil } }

    /// Every table some member answered with, by name.
    public var tableNames: [String] { Set(answered.flatMap { $0.tables!.keys }).sorted() }

    public func verdict(of answer: Answer) -> Verdict {
        guard let tables = answer.tables else { return .unanswered(answer.error ?? "no answer") }
        guard comparable else { return .otherSchemas }
        let names = tableNames
        let differ = names.filter { name in references[name].map { (tables[name]?.sha256 ?? "") != $0 } ?? false }
        if !differ.isEmpty { return .differs(differ) }
        let split = names.filter { tablesWithoutMajority.contains($0) }
        if !split.isEmpty { return .noMajority(split) }
        if names.contains(where: { references[$0] == nil }) { return .uncompared }
        return .same
    }

    /// The members named as differing from most, with the tables.
    public var differingMembers: [(id: String, tables: [String])] {
        answers.compactMap { answer in
            if case .differs(let tables) = verdict(of: answer) { return (answer.id, tables) }
            return nil
        }
    }

    /// A table as the members that share its reference digest hold it (nil: no reference).
    public func reference(of table: String) -> TableDigest? {
        guard let digest = references[table] else { return nil }
        return answered.lazy.compactMap { $0.tables![table] }.first { $0.sha256 == digest }
    }

    /// The members that answered, grouped by their digest of `table` (nil: they lack the table),
    /// the largest group first.
    public func groups(of table: String) -> [(digest: String?, ids: [String])] {
        Dictionary(grouping: answered, by: { $0.tables![table]?.sha256 })
            .map { (digest: $0.key, ids: $0.value.map(\.id).sorted()) }
            .sorted { ($0.ids.count, $1.ids.first ?? "") > ($1.ids.count, $0.ids.first ?? "") }
    }

    /// How the members split on the tables without a majority, in words: `hosts: n1, n2 share one
    /// digest, n3 has another; n4 gave none`.
    public var splitDescription: String {
        let tables = tablesWithoutMajority.map { table in
            var seen = 0
            let groups = groups(of: table).map { group -> String in
                let who = group.ids.joined(separator: ", ")
                let many = group.ids.count > 1
                guard group.digest != nil else { return "\(who) \(many ? "lack" : "lacks") the table" }
                defer { seen += 1 }
                return "\(who) \(many ? "share" : "has") \(seen == 0 ? "one digest" : "another")"
            }
            return "\(table): " + groups.joined(separator: ", ")
        }
        let silent = unanswered.map(\.id)
        return tables.joined(separator: "; ") + (silent.isEmpty ? "" : "; \(silent.joined(separator: ", ")) gave none")
    }

    /// Every member answered, with one schema version, and every table matches its reference.
    public var agree: Bool {
        comparable && unanswered.isEmpty && tablesWithoutMajority.isEmpty && differingMembers.isEmpty
    }

    /// More than half of the members asked answered with a digest.
    public var majorityAnswered: Bool { answered.count * 2 > answers.count }
}
