// CRC-32C with the SSE4.2 instruction, for the log's entry checksums. The portable table-driven
// version lives in Swift (Sources/Store/Support/CRC32C.swift) and is used where this is not available.
#include "dwcp_crc32c.h"
#include <string.h>

#if defined(__x86_64__)
int dwcp_crc32c_hardware_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2") ? 1 : 0;
}

__attribute__((target("sse4.2")))
uint32_t dwcp_crc32c_hardware(uint32_t crc, const void *bytes, size_t length) {
    const unsigned char *p = bytes;
    uint64_t c = crc;
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        c = __builtin_ia32_crc32di(c, word);
        p += 8;
        length -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (length > 0) {
        c32 = __builtin_ia32_crc32qi(c32, *p);
        p++;
        length--;
    }
    return c32;
}
#else
int dwcp_crc32c_hardware_available(void) { return 0; }
uint32_t dwcp_crc32c_hardware(uint32_t crc, const void *bytes, size_t length) { (void)bytes; (void)length; return crc; }
#endif
