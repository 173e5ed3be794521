#ifndef DWCP_CLMDB_SHIM_H
#define DWCP_CLMDB_SHIM_H
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <lmdb.h>
#include <link.h>
#include <stdint.h>
#include <ucontext.h>

/// Where a library's code lies in this process: the executable segment that holds `start` as it
/// is passed in (dwcp_lmdb_code_range), found by dl_iterate_phdr.
struct dwcp_code_range {
    uintptr_t start;
    uintptr_t end;
};

static inline int dwcp_find_code_segment(struct dl_phdr_info *info, size_t size, void *data) {
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

/// The code of the LMDB library this process runs (a fault whose instruction lies there is LMDB
/// walking a damaged file); empty when it cannot be told apart from the rest of the program (LMDB
/// linked into the program itself).
static inline struct dwcp_code_range dwcp_lmdb_code_range(void) {
    struct dwcp_code_range lmdb = {(uintptr_t)&mdb_cursor_get, 0};
    struct dwcp_code_range program = {(uintptr_t)&dwcp_find_code_segment, 0};
    if (dl_iterate_phdr(dwcp_find_code_segment, &lmdb) == 0) return (struct dwcp_code_range){0, 0};
    if (dl_iterate_phdr(dwcp_find_code_segment, &program) != 0 && program.start == lmdb.start) {
        return (struct dwcp_code_range){0, 0};
    }
    return lmdb;
}

/// The address of the instruction a signal interrupted, from the handler's context; 0 where it
/// cannot be read.
static inline uintptr_t dwcp_interrupted_instruction(const void *context) {
#if defined(__x86_64__)
    return (uintptr_t)((const ucontext_t *)context)->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
    return (uintptr_t)((const ucontext_t *)context)->uc_mcontext.pc;
#else
    (void)context;
    return 0;
#endif
}
#endif
