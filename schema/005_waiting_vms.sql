-- The VMs waiting for a host, found without scanning `vms`: the scheduler looks for them after
-- every applied batch, and in a large fleet almost none are waiting.

CREATE INDEX vms_waiting ON vms (actual_state, created_index) WHERE host IS NULL;
