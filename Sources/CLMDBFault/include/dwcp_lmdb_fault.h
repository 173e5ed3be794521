#ifndef DWCP_LMDB_FAULT_H
#define DWCP_LMDB_FAULT_H
#include <stdint.h>

/// Where a library's code lies in this process: one executable segment.
struct dwcp_code_range {
    uintptr_t start;
    uintptr_t end;
};

/// The code of the LMDB library this process runs (a fault whose instruction lies there is LMDB
/// walking a damaged file); empty when it cannot be told apart from the rest of the program (LMDB
/// linked into the program itself).
struct dwcp_code_range dwcp_lmdb_code_range(void);

/// The address of the instruction a signal interrupted, from the handler's context (its third
/// argument); 0 where it cannot be read. Safe in a signal handler.
uintptr_t dwcp_interrupted_instruction(const void *context);
#endif
