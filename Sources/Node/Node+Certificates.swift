import Replication

extension Node {
    /// The API's TLS now (nil: plain HTTP).
    public var apiTLS: APITLS? { currentAPITLS.withLock { $0 } }

    /// Reads the certificate, key and authority files of the replication port and of the API
    /// again (`dwcp serve` does on SIGHUP), so a certificate renewed in place takes effect without
    /// a restart: connections opened from then on use the new files, those open keep theirs.
    /// All or nothing: if a file cannot be used, or the new member certificate speaks for another
    /// member, nothing changes and the error says why. Returns what was reloaded.
    @discardableResult
    public func reloadCertificates() throws -> [String] {
        let peer = try raft?.transport.tls.map { try $0.reloaded() }
        try peer?.requireSpeaks(for: configuration.nodeID)
        let api = try apiTLS.map { try $0.reloaded() }
        var reloaded: [String] = []
        if let peer, let transport = raft?.transport {
            try transport.reloadTLS(peer)
            reloaded.append("replication port (\(peer.certificateFile))")
        }
        if let api {
            currentAPITLS.withLock { $0 = api }
            reloaded.append("API (\(api.certificateFile))")
        }
        return reloaded
    }
}
