-- 0009_audit.sql
-- What: the auditor role `licentric_auditor`, and an index that finds a license's
--       validation events.
-- Why:  `licentric audit verify|export` and `licentric projections rebuild` read every
--       tenant's log. The app role never can (forced RLS), and a non-superuser owner is
--       subject to forced RLS too. The auditor role is NOLOGIN and granted to the owner
--       only: a SELECT-only policy lets it read `events`, `log_heads` and `tenants` of
--       every tenant; on every other table it has plain SELECT grants, so the existing
--       tenant_isolation policies keep it to the tenant a transaction sets. It has no
--       INSERT/UPDATE/DELETE grant anywhere: a rebuild runs its writers as this role
--       into session-local shadow tables, so it cannot change a live table by mistake.
--       Validation records are one-event streams of their own (ledger/domain/
--       validation_record.py) naming their license in `data.license_id`; the license's
--       history (`GET /licenses/{id}/events`) finds them through the partial index
--       below, which only validation rows pay for.
-- Compatibility: additive. Creating the index locks `events` against writes while it
--       builds: on a large existing log, run this migration in a quiet moment.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'licentric_auditor') THEN
        CREATE ROLE licentric_auditor NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
END
$$;
-- The owner (who runs migrations and the CLI) may `SET ROLE licentric_auditor`.
GRANT licentric_auditor TO CURRENT_USER;
GRANT USAGE ON SCHEMA public TO licentric_auditor;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO licentric_auditor;
-- Read models added by later migrations of this owner are readable too (under their RLS).
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO licentric_auditor;

-- `TO licentric_auditor` also covers every MEMBER of the role, and the owner is one: the
-- check on current_user keeps the owner itself under tenant RLS until it explicitly
-- `SET ROLE licentric_auditor`.
CREATE POLICY auditor_reads_every_tenant ON events
    FOR SELECT TO licentric_auditor USING (current_user = 'licentric_auditor');
CREATE POLICY auditor_reads_every_tenant ON log_heads
    FOR SELECT TO licentric_auditor USING (current_user = 'licentric_auditor');
CREATE POLICY auditor_reads_every_tenant ON tenants
    FOR SELECT TO licentric_auditor USING (current_user = 'licentric_auditor');

CREATE INDEX events_validation_license
    ON events (tenant_id, (data->>'license_id'), position)
    WHERE stream_type = 'validation';
