-- DWCP views, materialized from the fleet log. Every row here can be rebuilt from the log.
-- Conventions: plural snake_case tables, `name` keys named things, sizes in *_bytes,
-- log positions in *_index, times in milliseconds since the Unix epoch (from the log record).

-- Bookkeeping of the applier: one row, written in the same transaction as every applied batch.
CREATE TABLE dwcp_state (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    applied_index   INTEGER NOT NULL,
    applied_term    INTEGER NOT NULL,
    schema_version  TEXT NOT NULL
);

CREATE TABLE hosts (
    name               TEXT PRIMARY KEY,
    region             TEXT NOT NULL,
    cpus               INTEGER NOT NULL,
    memory_bytes       INTEGER NOT NULL,
    cpus_used          INTEGER NOT NULL DEFAULT 0,
    memory_used_bytes  INTEGER NOT NULL DEFAULT 0,
    state              TEXT NOT NULL,             -- ready
    labels             TEXT NOT NULL DEFAULT '{}', -- JSON object
    created_index      INTEGER NOT NULL,
    updated_index      INTEGER NOT NULL,
    CHECK (cpus_used <= cpus AND memory_used_bytes <= memory_bytes)
) WITHOUT ROWID;
CREATE INDEX hosts_by_region ON hosts (region, state);

CREATE TABLE vms (
    name            TEXT PRIMARY KEY,
    region          TEXT NOT NULL,
    host            TEXT,                       -- NULL until placed
    cpus            INTEGER NOT NULL,
    memory_bytes    INTEGER NOT NULL,
    image           TEXT NOT NULL,
    desired_state   TEXT NOT NULL,              -- running | stopped
    actual_state    TEXT NOT NULL,              -- pending | unschedulable | scheduled | starting | running | stopped | crashed
    reason          TEXT NOT NULL DEFAULT '',
    labels          TEXT NOT NULL DEFAULT '{}', -- JSON object
    created_index   INTEGER NOT NULL,
    updated_index   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX vms_by_host ON vms (host);
CREATE INDEX vms_by_region_state ON vms (region, actual_state);

-- Every intent a client submitted, with what applying it did.
CREATE TABLE intents (
    log_index     INTEGER PRIMARY KEY,
    kind          TEXT NOT NULL,                -- host.add, host.remove, vm.create, vm.start, vm.stop, vm.delete
    subject       TEXT NOT NULL,                -- the host or VM name
    payload       TEXT NOT NULL,                -- JSON
    submitted_at  INTEGER NOT NULL,             -- ms since epoch, from the record
    request_id    TEXT,                         -- client request id, for retries
    outcome       TEXT NOT NULL,                -- applied | rejected | duplicate
    error         TEXT NOT NULL DEFAULT ''      -- why it was rejected (a conflict found at apply time)
);
CREATE UNIQUE INDEX intents_by_request_id ON intents (request_id) WHERE request_id IS NOT NULL AND outcome <> 'duplicate';
CREATE INDEX intents_by_subject ON intents (subject);

CREATE TABLE placements (
    vm           TEXT NOT NULL,
    host         TEXT NOT NULL,
    log_index    INTEGER PRIMARY KEY,
    explanation  TEXT NOT NULL                  -- JSON: how the host was chosen
);
CREATE INDEX placements_by_vm ON placements (vm);

CREATE TABLE vm_events (
    vm          TEXT NOT NULL,
    log_index   INTEGER NOT NULL,
    at          INTEGER NOT NULL,               -- ms since epoch, from the record
    from_state  TEXT NOT NULL,
    to_state    TEXT NOT NULL,
    reason      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX vm_events_by_vm ON vm_events (vm, log_index);
CREATE INDEX vm_events_by_index ON vm_events (log_index);
