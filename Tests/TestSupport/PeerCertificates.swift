import ChildProcess
import Foundation

/// Makes a region's certificate authority and its members' certificates in `directory` with
/// `scripts/peer-certs.sh` (openssl): `ca.pem`, and `ID.pem` and `ID.key` for each member, whose
/// certificate names `members[ID]` (an IP address or a DNS name). An authority already in
/// `directory` signs the new certificates.
public func makePeerCertificates(in directory: String, _ members: [String: String]) async throws {
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../scripts/peer-certs.sh").standardized.path
    let made = try await runToEnd(
        "/bin/bash", [script, directory] + members.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" })
    guard made.status == 0 else {
        throw PeerCertificatesError(message: "scripts/peer-certs.sh exited \(made.status): \(made.errors)")
    }
}

/// `scripts/peer-certs.sh` failed (openssl missing, a directory that cannot be written).
public struct PeerCertificatesError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
