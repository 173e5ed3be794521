import Foundation

extension String {
    /// The string as an SQL literal: in single quotes, each quote inside doubled.
    var sqlLiteral: String { "'" + replacingOccurrences(of: "'", with: "''") + "'" }
}
