// dl_iterate_phdr and REG_RIP are GNU extensions: asked for here, in this file only (defined in a
// module's header, _GNU_SOURCE changed fd_set as the other modules see it, and a clean build failed).
#define _GNU_SOURCE
#include "dwcp_lmdb_fault.h"
#include <link.h>
#include <lmdb.h>
#include <ucontext.h>

// The executable segment that holds range->start as it is passed in.
static int find_code_segment(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    struct dwcp_code_range *range = data;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *header = &info->dlpi_phdr[i];
        if (header->p_type != PT_LOAD || !(header->p_flags & PF_X)) continue;
        uintptr_t start = info->dlpi_addr + header->p_vaddr;
        uintptr_t end = start + header->p_memsz;
        if (range->start >= start && range->start < end) {
            range->start = start;
            range->end = end;
            return 1;
        }
    }
    return 0;
}

struct dwcp_code_range dwcp_lmdb_code_range(void) {
    struct dwcp_code_range lmdb = {(uintptr_t)&mdb_cursor_get, 0};
    struct dwcp_code_range program = {(uintptr_t)&find_code_segment, 0};
    struct dwcp_code_range none = {0, 0};
    if (dl_iterate_phdr(find_code_segment, &lmdb) == 0) return none;
    if (dl_iterate_phdr(find_code_segment, &program) != 0 && program.start == lmdb.start) return none;
    return lmdb;
}

uintptr_t dwcp_interrupted_instruction(const void *context) {
#if defined(__x86_64__)
    return (uintptr_t)((const ucontext_t *)context)->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
    return (uintptr_t)((const ucontext_t *)context)->uc_mcontext.pc;
#else
    (void)context;
    return 0;
#endif
}
