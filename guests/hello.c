/* builtin:hello — reports that it is up, prints one line and halts. */
#include "guest.h"

void guest_main(const struct boot_params *params) {
    (void)params;
    boot_timer();
    puts("hello from builtin:hello\n");
}
