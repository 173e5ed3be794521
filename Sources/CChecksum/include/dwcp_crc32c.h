#ifndef DWCP_CRC32C_H
#define DWCP_CRC32C_H
#include <stddef.h>
#include <stdint.h>

/// Returns 1 when this CPU has the SSE4.2 CRC32 instruction, 0 otherwise.
int dwcp_crc32c_hardware_available(void);

/// Extends a CRC-32C (Castagnoli) over `length` bytes with the SSE4.2 instruction. `crc` is the
/// running value before the final inversion (start with 0xFFFFFFFF). Call only when
/// dwcp_crc32c_hardware_available() returned 1.
uint32_t dwcp_crc32c_hardware(uint32_t crc, const void *bytes, size_t length);
#endif
