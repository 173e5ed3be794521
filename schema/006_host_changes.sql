-- The last log index that changed a VM placed on the host: placed there, its desired state set,
-- a state reported, deleted. A host agent reads its VMs again only when this moves, not after
-- every commit of the fleet.
ALTER TABLE hosts ADD COLUMN vms_changed_index INTEGER NOT NULL DEFAULT 0;
