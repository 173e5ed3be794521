-- Fills in hosts.vms_changed_index (006) for views built before 006, with what the applier would
-- have written: the last index that placed a VM on the host, set the desired state of or reported
-- the state of a VM placed there (each of which also moved that VM's updated_index), or deleted a
-- VM placed there (its `deleted` event, and its placement after the VM's last creation, the event
-- whose from_state is ''). It relies on vm_events and placements keeping every row. On an empty
-- database, and on views the applier kept since 006, it changes nothing.
CREATE TEMP TABLE deleted_from_host AS
    SELECT placement.host AS host, deletion.log_index AS log_index
    FROM vm_events AS deletion
    JOIN placements AS placement ON placement.vm = deletion.vm AND placement.log_index < deletion.log_index
    WHERE deletion.to_state = 'deleted'
      AND NOT EXISTS (
          SELECT 1 FROM vm_events AS creation
          WHERE creation.vm = deletion.vm AND creation.from_state = ''
            AND creation.log_index > placement.log_index AND creation.log_index < deletion.log_index);
CREATE INDEX temp.deleted_from_host_by_host ON deleted_from_host (host, log_index);
UPDATE hosts SET vms_changed_index = max(
    coalesce((SELECT max(updated_index) FROM vms WHERE vms.host = hosts.name), 0),
    coalesce((SELECT max(deleted.log_index) FROM deleted_from_host AS deleted
              WHERE deleted.host = hosts.name AND deleted.log_index > hosts.created_index), 0));
DROP TABLE deleted_from_host;
