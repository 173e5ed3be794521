-- The members of this region's Raft group, as the latest membership entry applied says.
-- Who leads right now, terms and lag are live state, not log state: `dwcp cluster status`.

CREATE TABLE members (
    id           TEXT PRIMARY KEY,              -- the node id (--node-id)
    address      TEXT NOT NULL,                 -- its replication address, host:port
    role         TEXT NOT NULL,                 -- voter | learner
    since_index  INTEGER NOT NULL               -- the log index of the entry that gave it this role
);
