-- 0006_timers.sql
-- What: the licenses' expiry due time, and the two narrow cross-tenant lookups the
--       timer loop (workers/timers.py) starts from: machines past their heartbeat
--       deadline, and licenses whose expiry is due.
-- Why:  timers must fire within 60 s of their due time without scanning: each lookup
--       walks an index on the due time (machine_heartbeats_due from 0004,
--       licenses_expiry_due below), oldest first, LIMIT n.
--       Workers run as the app role (no BYPASSRLS), which sees no row until a tenant is
--       set; finding due items across tenants is the one thing it cannot do. The two
--       SECURITY DEFINER functions below do only that and return only (tenant, ids):
--       every item is then loaded and changed in its own tenant, under RLS, by a
--       command. They are owned by `licentric_timers`, a NOLOGIN role whose only reach
--       is a SELECT policy on the columns they read (RLS is forced on these tables, so
--       even their owner sees nothing without a policy).
--       `licenses.expiry_due_at` is `expires_at` while an `Expired` event is still to be
--       recorded for it (License.expiry_due_at), else NULL: recorded, terminal and
--       deleted licenses leave the index.
-- Compatibility: additive; old code ignores the column and the functions.

ALTER TABLE licenses ADD COLUMN expiry_due_at timestamptz;
CREATE INDEX licenses_expiry_due ON licenses (expiry_due_at) WHERE expiry_due_at IS NOT NULL;
-- Licenses projected before this column existed: the timer's command is idempotent
-- (License.record_expired records nothing twice), so marking every candidate is safe.
UPDATE licenses SET expiry_due_at = expires_at
WHERE expires_at IS NOT NULL AND NOT deleted AND status IN ('active', 'suspended');

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'licentric_timers') THEN
        CREATE ROLE licentric_timers NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
END
$$;
-- Membership and CREATE on the schema: what a non-superuser owner needs to hand the
-- functions over (ALTER FUNCTION ... OWNER TO). The role cannot log in.
GRANT licentric_timers TO CURRENT_USER;
GRANT USAGE, CREATE ON SCHEMA public TO licentric_timers;
GRANT SELECT (tenant_id, machine_id, license_id, deadline_at) ON machine_heartbeats
    TO licentric_timers;
GRANT SELECT (tenant_id, id, expiry_due_at) ON licenses TO licentric_timers;
CREATE POLICY timers_due_scan ON machine_heartbeats FOR SELECT TO licentric_timers
    USING (true);
CREATE POLICY timers_due_scan ON licenses FOR SELECT TO licentric_timers USING (true);

-- Machines whose next heartbeat was due by p_now, most overdue first.
CREATE FUNCTION due_heartbeat_deadlines(p_now timestamptz, p_limit integer)
RETURNS TABLE (tenant_id uuid, machine_id uuid, license_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
    SELECT h.tenant_id, h.machine_id, h.license_id FROM public.machine_heartbeats h
    WHERE h.deadline_at <= p_now
    ORDER BY h.deadline_at
    LIMIT LEAST(GREATEST(p_limit, 0), 1000)
$$;

-- Licenses whose expiry was due by p_now and is not recorded yet, oldest first.
CREATE FUNCTION due_license_expiries(p_now timestamptz, p_limit integer)
RETURNS TABLE (tenant_id uuid, license_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
    SELECT l.tenant_id, l.id FROM public.licenses l
    WHERE l.expiry_due_at <= p_now
    ORDER BY l.expiry_due_at
    LIMIT LEAST(GREATEST(p_limit, 0), 1000)
$$;

ALTER FUNCTION due_heartbeat_deadlines(timestamptz, integer) OWNER TO licentric_timers;
ALTER FUNCTION due_license_expiries(timestamptz, integer) OWNER TO licentric_timers;
REVOKE ALL ON FUNCTION due_heartbeat_deadlines(timestamptz, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION due_license_expiries(timestamptz, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION due_heartbeat_deadlines(timestamptz, integer) TO licentric_app;
GRANT EXECUTE ON FUNCTION due_license_expiries(timestamptz, integer) TO licentric_app;
