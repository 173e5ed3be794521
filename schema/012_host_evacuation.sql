-- A host given up for its VMs (`host.evacuated`, `dwcp host evacuate`): `evacuated_index` is the
-- log index of its latest evacuation, NULL if it was never evacuated. The VMs that were placed on
-- it waited to be placed anew from that index on (their vm_events say "evacuated from …").
ALTER TABLE hosts ADD COLUMN evacuated_index INTEGER;
