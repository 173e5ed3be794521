import Logging
import Query
import Store

extension Node {
    /// Logs an error the API answered with status 500, at most one line a minute for each kind
    /// (its type and code): damaged views that a query met, say, were told only to that client,
    /// and the node served on with no word in its log.
    func noteServerError(_ error: any Error) {
        let kind: String =
            switch error {
            case let error as NodeError: "NodeError \(error.code.rawValue)"
            case let error as QueryError: "QueryError \(error.code.rawValue)"
            case let error as StoreError: "StoreError \(error.code.rawValue)"
            default: "\(type(of: error))"
            }
        guard
            let held = serverErrorsLogged.withLock({
                $0[kind, default: LogThrottle(interval: .seconds(60))].admit()
            })
        else { return }
        logger.error("a request failed on this node: \(error)\(LogThrottle.more(held))")
    }
}
