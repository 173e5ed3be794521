-- A host's health (`host.state_reported`): `state` is `ready` or `not_ready`; `state_reason` says
-- why a host is not ready (the leader marks a host not ready when the member whose host agent
-- runs it stops answering, and ready again when it answers). `agent` is that member's id, set as
-- its host agent starts; empty for a host added by hand, which nothing marks not ready.
ALTER TABLE hosts ADD COLUMN state_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE hosts ADD COLUMN agent TEXT NOT NULL DEFAULT '';
