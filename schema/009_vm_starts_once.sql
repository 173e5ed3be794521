-- A start is measured once. Until this file, a host agent's report applied twice (the agent tried
-- again after an answer that never came, and both copies committed) recorded its start twice in
-- `vm_starts`; the applier now records a start only with the change of state it reports, which
-- also writes the VM's `vm_events` row at the same index. Views written before keep the first
-- measurement of each start and lose the copies, as views rebuilt from the log would.
DELETE FROM vm_starts
WHERE NOT EXISTS (SELECT 1 FROM vm_events WHERE vm_events.log_index = vm_starts.log_index);
