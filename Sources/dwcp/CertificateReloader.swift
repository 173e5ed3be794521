import Logging
import Node
import ServiceLifecycle
import UnixSignals

/// Reloads the node's certificates on SIGHUP (``Node/reloadCertificates()``): a certificate
/// renewed in place takes effect without a restart. A node without TLS traps SIGHUP too and says
/// it has nothing to reload: SIGHUP's default action ended the process at once, a leader without
/// handing over and a host agent's guests with it (a configuration tool that sends every member
/// SIGHUP took a plain region down).
struct CertificateReloader: Service {
    let node: Node
    let logger: Logger
    /// SIGHUP, trapped before the node opened its data directory (a start that rebuilds the views
    /// takes minutes, and a SIGHUP meanwhile ended it).
    let hangups: UnixSignalsSequence

    func run() async throws {
        for await _ in hangups.cancelOnGracefulShutdown() {
            do {
                let reloaded = try node.reloadCertificates()
                guard !reloaded.isEmpty else {
                    logger.notice("SIGHUP: nothing to reload (the node uses no certificates); it goes on")
                    continue
                }
                logger.notice("SIGHUP: reloaded the certificates of the \(reloaded.joined(separator: " and "))")
            } catch {
                logger.error("SIGHUP: cannot reload the certificates (\(error)); the ones in use stay")
            }
        }
    }
}
