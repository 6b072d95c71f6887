-- 0004_machine_heartbeats.sql
-- What: the machines' last-seen rows: one row per active machine, updated by each
--       heartbeat ping, with the deadline by which the next ping is due.
-- Why:  a ping is not an event (ARCHITECTURE.md §4): it updates this row; events are
--       appended only when the heartbeat state changes (first ping, death, revival).
--       The timer finds overdue machines through the index on (deadline_at), not by
--       scanning. tenant_id leads every key (RLS, Citus).
-- Compatibility: additive.

CREATE TABLE machine_heartbeats (
    tenant_id          uuid        NOT NULL,
    machine_id         uuid        NOT NULL,
    license_id         uuid        NOT NULL,
    last_heartbeat_at  timestamptz,
    deadline_at        timestamptz,
    PRIMARY KEY (tenant_id, machine_id)
);
CREATE INDEX machine_heartbeats_due ON machine_heartbeats (deadline_at)
    WHERE deadline_at IS NOT NULL;

ALTER TABLE machine_heartbeats ENABLE ROW LEVEL SECURITY;
ALTER TABLE machine_heartbeats FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON machine_heartbeats
    USING (tenant_id = current_tenant()) WITH CHECK (tenant_id = current_tenant());
GRANT SELECT, INSERT, UPDATE, DELETE ON machine_heartbeats TO licentric_app;
