/* builtin:memtouch — dirties a working set of its memory at a steady rate, for live migration.
 * Command line: working_set=BYTES (default 64M), rate=PAGES_PER_SECOND (default 25600, 100 MiB/s). */
#include "guest.h"

void guest_main(const struct boot_params *params) {
    boot_timer();
    u64 memory = params ? params->memory_bytes : (128ul << 20);
    u64 start = params ? params->free_start : (8ul << 20);
    u64 working_set = param_u64(params, "working_set", 64ul << 20);
    u64 rate = param_u64(params, "rate", 25600);
    if (start + working_set > memory) working_set = memory > start ? memory - start : 0;
    u64 pages = working_set / 4096;
    u64 per_tick = rate / 100; /* one tick is 10 ms */
    if (per_tick == 0) per_tick = 1;
    puts("memtouch: working set ");
    put_u64(pages);
    puts(" pages, ");
    put_u64(rate);
    puts(" pages/s\n");
    u64 next = 0, dirtied = 0, generation = 0;
    for (;;) {
        for (u64 i = 0; i < per_tick && pages; i++) {
            *(volatile u64 *)(start + next * 4096) = ++generation;
            next = (next + 1) % pages;
            dirtied++;
        }
        if (dirtied % (per_tick * 100) < per_tick) {
            puts("memtouch: dirtied ");
            put_u64(dirtied);
            puts(" pages\n");
        }
        sleep_ms(10);
    }
}
