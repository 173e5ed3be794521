#ifndef DWCP_EXECUTOR_HOOK_H
#define DWCP_EXECUTOR_HOOK_H
#include <stdbool.h>

/// Sets the Swift runtime's global-executor hook (`swift_task_enqueueGlobal_hook`) to `hook`, a
/// Swift function `(UnownedJob, original) -> Void`, if no hook is set yet. Returns whether it did.
///
/// SwiftNIO's `unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor` finds the
/// hook with `dlsym`, which cannot see it when the runtime is linked into the binary
/// (`--static-swift-stdlib`: the symbol is not exported). Referring to it here lets the linker
/// resolve it in either build.
bool dwcp_install_enqueue_global_hook(const void *hook);
#endif
