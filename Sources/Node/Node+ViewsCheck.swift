import Store

extension Node {
    /// Checks the views once as the node starts (``ViewStore/checkIntegrity()``), beside the
    /// other loops: damage SQLite can find stops the node, and the next start rebuilds the views
    /// from the log. Views rebuilt by this start are not checked. No snapshot is taken until the
    /// check is done (``ViewSnapshots/viewsChecked``). A check that fails for another reason
    /// (an I/O error) is logged: the check is a precaution, and the loops meet such errors too.
    func checkViews() async throws {
        if views.rebuildReason == nil {
            let started = ContinuousClock.now
            do {
                try await views.checkIntegrity()
                logger.debug("views.sqlite passed SQLite's integrity check in \(started.duration(to: .now))")
            } catch let error as StoreError where error.code == .views {
                throw error  // Damage, marked for the next start.
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                logger.warning("could not check views.sqlite's integrity: \(error)")
            }
        }
        snapshots.viewsChecked.advance(to: 1)
    }
}
