import Logging
import Node
import ServiceLifecycle
import UnixSignals

/// Reloads the node's certificates on SIGHUP (``Node/reloadCertificates()``): a certificate
/// renewed in place takes effect without a restart. Runs only for a node with TLS, so SIGHUP
/// keeps its usual meaning for one without.
struct CertificateReloader: Service {
    let node: Node
    let logger: Logger

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            do {
                let reloaded = try node.reloadCertificates()
                logger.notice("SIGHUP: reloaded the certificates of the \(reloaded.joined(separator: " and "))")
            } catch {
                logger.error("SIGHUP: cannot reload the certificates (\(error)); the ones in use stay")
            }
        }
    }
}
