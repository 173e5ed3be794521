import CExecutorHook
import NIOCore
import NIOPosix

/// Makes NIO's shared event loops Swift's global executor, so that tasks run on the threads that
/// already read and write the sockets (docs/architecture.md, Threads).
///
/// It does what SwiftNIO's `NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()`
/// does, with one difference: NIO looks the runtime's hook up with `dlsym`, which does not find it in a
/// binary that links the Swift runtime in (`--static-swift-stdlib`, every release build), so there it
/// returns false and tasks stay on Dispatch's pool. Here the linker resolves the hook, in either build.
enum EventLoopExecutor {
    /// The runtime's hook: called with every job for the global executor, and the default enqueue.
    private typealias EnqueueGlobalHook = @convention(thin) (UnownedJob, @convention(thin) (UnownedJob) -> Void) -> Void

    /// Installs the hook; false if another is installed already, or on a toolchain whose hook
    /// this was not written for (its signature is the runtime's, not a public API: NIO's own
    /// install has the same bound). Call once, before any task runs elsewhere, after
    /// `NIOSingletons.groupLoopCountSuggestion` is set.
    static func install() -> Bool {
        #if compiler(<6.6)
            let hook: EnqueueGlobalHook = { job, _ in
                // The loop this thread runs, if it is one of the group's (no thread switch), else the next.
                MultiThreadedEventLoopGroup.singleton.any().enqueue(ExecutorJob(job))
            }
            return dwcp_install_enqueue_global_hook(unsafeBitCast(hook, to: UnsafeRawPointer.self))
        #else
            return false
        #endif
    }
}
