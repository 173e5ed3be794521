-- A start is measured once. Until this file, a host agent's report applied twice (the agent tried
-- again after an answer that never came, and both copies committed) recorded its start twice in
-- `vm_starts`. The applier now skips a start whose measurement (path and both durations) is the
-- VM's latest recorded start; this deletes the copies earlier builds recorded by the same rule (a
-- row that repeats the VM's row just before it), as views rebuilt from the log would have them.
DELETE FROM vm_starts
WHERE EXISTS (
    SELECT 1 FROM vm_starts AS earlier
    WHERE earlier.vm = vm_starts.vm
      AND earlier.log_index = (SELECT max(log_index) FROM vm_starts AS before
                               WHERE before.vm = vm_starts.vm AND before.log_index < vm_starts.log_index)
      AND earlier.path = vm_starts.path
      AND earlier.first_entry_us = vm_starts.first_entry_us
      AND earlier.boot_us = vm_starts.boot_us
);
