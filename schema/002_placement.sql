-- Placement constraints and decisions (the scheduler issue).

-- The VM's constraints, as its vm.created record asked.
ALTER TABLE vms ADD COLUMN group_name TEXT;                                -- NULL: no group
ALTER TABLE vms ADD COLUMN anti_affinity TEXT;                             -- hard | soft | NULL
ALTER TABLE vms ADD COLUMN affinity_group TEXT;                            -- share a host with this group
ALTER TABLE vms ADD COLUMN required_labels TEXT NOT NULL DEFAULT '{}';     -- JSON object the host must carry
ALTER TABLE vms ADD COLUMN placement_policy TEXT NOT NULL DEFAULT 'binpack';  -- binpack | spread
-- The latest scheduling decision for the VM (placed or not), as JSON: see placements.explanation.
ALTER TABLE vms ADD COLUMN explanation TEXT NOT NULL DEFAULT '{}';
CREATE INDEX vms_by_group ON vms (group_name) WHERE group_name IS NOT NULL;

-- The last log index that changed anything placement depends on (hosts, their labels, VMs placed
-- or removed from hosts). `vm create --check-index N` commits only while this is <= N.
ALTER TABLE dwcp_state ADD COLUMN placement_index INTEGER NOT NULL DEFAULT 0;
