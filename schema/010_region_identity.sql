-- The region's id (16 hexadecimal digits): a random number its first leader proposes once in a
-- `region.identified` record, the first of which wins. Every member names it first on each
-- replication connection it opens and refuses connections from members of another region
-- (docs/replication.md, "The region id"). NULL until that record applies.
ALTER TABLE dwcp_state ADD COLUMN region_id TEXT;
