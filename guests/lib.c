#include "guest.h"

void putc(char c) {
    while (!(inb(PORT_COM1 + 5) & 0x20)) {
    }
    outb(PORT_COM1, (u8)c);
}

void puts(const char *s) {
    while (*s) putc(*s++);
}

void put_u64(u64 value) {
    char digits[21];
    int n = 0;
    do {
        digits[n++] = (char)('0' + value % 10);
        value /= 10;
    } while (value);
    while (n) putc(digits[--n]);
}

void boot_timer(void) { outb(PORT_BOOT_TIMER, BOOT_TIMER_MAGIC); }

void sleep_ms(u32 ms) { outl(PORT_SLEEP, ms); }

static u64 length(const char *s) {
    u64 n = 0;
    while (s[n]) n++;
    return n;
}

static int starts_with(const char *s, const char *prefix) {
    while (*prefix) {
        if (*s++ != *prefix++) return 0;
    }
    return 1;
}

u64 param_u64(const struct boot_params *params, const char *key, u64 fallback) {
    if (!params) return fallback;
    const char *p = params->command_line;
    const char *end = params->command_line + sizeof params->command_line;
    while (p < end && *p) {
        while (p < end && *p == ' ') p++;
        if (p < end && starts_with(p, key)) {
            const char *q = p;
            while (*q && *q != '=') q++;
            if (*q == '=' && (u64)(q - p) == length(key)) {
                q++;
                u64 value = 0;
                int any = 0;
                while (*q >= '0' && *q <= '9') {
                    value = value * 10 + (u64)(*q++ - '0');
                    any = 1;
                }
                if (*q == 'K') value <<= 10;
                if (*q == 'M') value <<= 20;
                if (*q == 'G') value <<= 30;
                return any ? value : fallback;
            }
        }
        while (p < end && *p && *p != ' ') p++;
    }
    return fallback;
}

void guest_entry(const struct boot_params *params) {
    if (params && params->magic != BOOT_PARAMS_MAGIC) params = 0;
    guest_main(params);
}
