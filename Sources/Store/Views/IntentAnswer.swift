import GRDB

/// What an intent did when it applied, with its subject's row as it stood right after: the answer
/// the member that took the intent gives its client.
///
/// The applier reads it inside the transaction that applies the intent, for the intents a member
/// asks it to (``ViewStore/apply(_:answering:)``), so the member answers, when the answer is there,
/// without a read of its own afterwards: two statements, each its own read transaction with
/// SQLite's file locks (BENCHMARKS.md, bench/region, "Answers from the apply").
public struct IntentAnswer: Sendable, Equatable {
    /// `applied`, `rejected` or `duplicate`, as in the `intents` table.
    public var outcome: String
    /// Why it did not apply (empty when it did), as in the `intents` table.
    public var error: String
    /// The subject's row right after the intent applied; nil when there is none.
    public var row: JSONValue?

    public init(outcome: String, error: String, row: JSONValue?) {
        self.outcome = outcome
        self.error = error
        self.row = row
    }

    /// An answer asked for: of the entry at some index if it carries exactly `payload` (the intent
    /// a member proposed there; another leader's entry may have taken the index), about `subject`.
    public struct Request: Sendable {
        public var payload: [UInt8]
        public var subject: ViewRowName

        public init(payload: [UInt8], subject: ViewRowName) {
            self.payload = payload
            self.subject = subject
        }
    }
}

/// A row of `hosts` or `vms` named by its table and name: the subject of an intent.
public struct ViewRowName: Sendable, Hashable {
    /// The tables whose rows intents are about.
    public enum Table: String, Sendable {
        case hosts, vms
    }

    public var table: Table
    public var name: String

    public init(table: Table, name: String) {
        self.table = table
        self.name = name
    }

    /// The columns that hold JSON text: a row as an answer shows it has them as JSON, as a request
    /// gives them (`"labels":{"rack":"a"}`), not as strings of JSON (`dwcp sql` shows the table's
    /// text as it is).
    static let jsonColumns: Set<String> = ["labels", "required_labels", "explanation"]

    /// The row as a JSON object (columns in the table's order, JSON text as JSON), nil when there
    /// is none.
    public func read(_ db: Database) throws -> JSONValue? {
        try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM \(table.rawValue) WHERE name = ?"), arguments: [name])
            .map { row in
                // By position: looking each column up by name lowercases the name every time.
                JSONValue.object(
                    zip(row.columnNames, row.databaseValues).map { column, value in
                        if Self.jsonColumns.contains(column), case .string(let text) = value.storage,
                            let parsed = try? JSONValue.parse(text)
                        {
                            return (column, parsed)
                        }
                        return (column, JSONValue(databaseValue: value))
                    })
            }
    }
}
