/* builtin:counter — runs until stopped: every 100 ms it counts, touches a page of its memory and
 * prints a heartbeat with the count. The count lives in guest memory, so a restored snapshot goes on
 * from where it stopped. */
#include "guest.h"

static volatile u64 count;

void guest_main(const struct boot_params *params) {
    boot_timer();
    u64 memory = params ? params->memory_bytes : (64ul << 20);
    u64 start = params ? params->free_start : (8ul << 20);
    u64 interval = param_u64(params, "interval_ms", 100);
    u64 pages = memory > start ? (memory - start) / 4096 : 0;
    for (;;) {
        count++;
        if (pages) *(volatile u64 *)(start + (count % pages) * 4096) = count;
        puts("heartbeat ");
        put_u64(count);
        putc('\n');
        sleep_ms((u32)interval);
    }
}
