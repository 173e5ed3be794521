/*
 * What every DWCP guest may use: the serial port, the boot timer, the sleep port and the boot
 * parameters the VMM passes. Freestanding: no libc.
 */
#ifndef DWCP_GUEST_H
#define DWCP_GUEST_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long u64;

/* Ports the DWCP VMM implements (docs/hypervisor.md). */
#define PORT_COM1 0x3f8
#define PORT_BOOT_TIMER 0x440 /* write BOOT_TIMER_MAGIC once the guest is up */
#define PORT_SLEEP 0x441      /* write a 32-bit number of milliseconds: the vCPU sleeps that long */
#define BOOT_TIMER_MAGIC 123

#define BOOT_PARAMS_MAGIC 0x44574350u /* "DWCP" */

/* Written by the VMM at the address it passes in rdi (none under QEMU: rdi = 0). */
struct boot_params {
    u32 magic;
    u32 version;
    u64 memory_bytes;
    u64 free_start;   /* first byte of guest memory the image does not use */
    char command_line[256];
};

static inline void outb(u16 port, u8 value) { __asm__ volatile("outb %0, %1" : : "a"(value), "Nd"(port)); }
static inline void outl(u16 port, u32 value) { __asm__ volatile("outl %0, %1" : : "a"(value), "Nd"(port)); }
static inline u8 inb(u16 port) {
    u8 value;
    __asm__ volatile("inb %1, %0" : "=a"(value) : "Nd"(port));
    return value;
}

void putc(char c);
void puts(const char *s);
void put_u64(u64 value);
void boot_timer(void);
void sleep_ms(u32 ms);
/* The value of `key=` on the command line as a number (suffixes K, M, G are powers of 1024), or `fallback`. */
u64 param_u64(const struct boot_params *params, const char *key, u64 fallback);
void guest_main(const struct boot_params *params);

#endif
