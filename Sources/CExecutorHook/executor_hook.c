#include "dwcp_executor_hook.h"
#include <stddef.h>

// Defined by the Swift concurrency runtime (libswift_Concurrency): when set, every job for the
// global concurrent executor goes to it instead of to Dispatch.
extern const void *swift_task_enqueueGlobal_hook;

bool dwcp_install_enqueue_global_hook(const void *hook) {
    const void *expected = NULL;
    return __atomic_compare_exchange_n(&swift_task_enqueueGlobal_hook, &expected, hook, false,
                                       __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}
