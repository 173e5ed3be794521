/* builtin:crash — prints a line, then triple-faults: it loads an empty interrupt table and raises an
 * exception, which the CPU cannot deliver. The host agent must report the VM `crashed` and live on. */
#include "guest.h"

void guest_main(const struct boot_params *params) {
    (void)params;
    boot_timer();
    puts("crash: about to triple-fault\n");
    struct __attribute__((packed)) {
        u16 limit;
        u64 base;
    } empty = {0, 0};
    __asm__ volatile("lidt %0; ud2" : : "m"(empty));
}
