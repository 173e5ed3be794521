import NIOCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

extension NodeError {
    /// A listener that could not take `address` (set by the option `flag`), in words: the
    /// address in use, not on this machine, or a port the process may not take. Nil when `error`
    /// is no such failure.
    public static func listening(on address: String, flag: String, _ error: any Error) -> NodeError? {
        guard let error = error as? IOError, [EADDRINUSE, EADDRNOTAVAIL, EACCES].contains(error.errnoCode) else {
            return nil
        }
        let hint =
            switch error.errnoCode {
            case EADDRINUSE: " (another dwcp, or another program, listens there)"
            case EADDRNOTAVAIL: " (no interface of this machine has that address)"
            default: " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
            }
        return NodeError(
            .unavailable,
            "cannot listen on \(address) (\(flag)): \(String(cString: strerror(error.errnoCode)))\(hint)", cause: error)
    }
}
