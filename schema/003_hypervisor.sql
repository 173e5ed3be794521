-- What the host agents need and report.

-- The index of the record that last set the VM's desired state (create, start, stop), and of the
-- last state its host agent reported: a start is due when the desired state is newer than the report.
ALTER TABLE vms ADD COLUMN desired_index INTEGER NOT NULL DEFAULT 0;
ALTER TABLE vms ADD COLUMN reported_index INTEGER NOT NULL DEFAULT 0;

-- Every start a host agent made, with the path it took and how long it took, measured on the host
-- from the moment the record that asked for the start was applied there.
CREATE TABLE vm_starts (
    log_index       INTEGER PRIMARY KEY,        -- the `running` report
    vm              TEXT NOT NULL,
    host            TEXT NOT NULL,
    at              INTEGER NOT NULL,           -- ms since epoch, from the record
    path            TEXT NOT NULL,              -- cold | pool | restore
    first_entry_us  INTEGER NOT NULL,           -- until the boot vCPU first entered the guest
    boot_us         INTEGER NOT NULL            -- until the guest wrote the boot-timer port
);
CREATE INDEX vm_starts_by_vm ON vm_starts (vm);
