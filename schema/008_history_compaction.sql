-- The history tables (intents, vm_events, vm_starts, placements) keep a window, not everything:
-- the leader proposes `history.compacted` records (`dwcp serve --history-retention`), and
-- applying one deletes the history rows logged before its index, except the latest placement of
-- each VM that still exists. This is where the last one reached: rows below it are gone on every
-- member.
ALTER TABLE dwcp_state ADD COLUMN history_compacted_index INTEGER NOT NULL DEFAULT 0;
