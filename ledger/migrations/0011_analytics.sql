-- 0011_analytics.sql
-- What: the analytics projection (per-tenant daily counters of machine activations and
--       validation results, and its stored position in each tenant's log), the narrow
--       cross-tenant listing its worker starts from, and two aggregate-only functions
--       for monitoring (consumer lag, webhook delivery backlog/failures).
-- Why:  `GET /analytics` must not scan events per request (API.md §4). A tailing
--       consumer (workers/analytics.py) adds each batch of events to the counters and
--       moves its position in the same transaction, so every event is counted exactly
--       once whatever crashes. Monitoring needs totals across tenants, which the app
--       role (RLS, no BYPASSRLS) cannot read: the SECURITY DEFINER functions below return
--       sums only, never a tenant id or a row. They are owned by NOLOGIN roles whose only
--       reach is a SELECT policy on the columns they read (as in 0006 and 0008).
-- Compatibility: additive; old code ignores these tables and functions.

CREATE TABLE analytics_daily (
    tenant_id           uuid   NOT NULL,
    day                 date   NOT NULL,  -- UTC day of the event's occurred_at
    activations         bigint NOT NULL DEFAULT 0,
    validations_success bigint NOT NULL DEFAULT 0,
    validations_failed  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, day)
);

CREATE TABLE analytics_positions (
    tenant_id  uuid        PRIMARY KEY,
    position   bigint      NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['analytics_daily', 'analytics_positions'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I USING (tenant_id = current_tenant())'
            ' WITH CHECK (tenant_id = current_tenant())', t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE ON %I TO licentric_app', t);
    END LOOP;
END
$$;

-- Failed deliveries are counted at every scrape: keep that an index walk.
CREATE INDEX webhook_deliveries_failed ON webhook_deliveries (tenant_id) WHERE state = 'failed';

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'licentric_analytics') THEN
        CREATE ROLE licentric_analytics NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'licentric_monitor') THEN
        CREATE ROLE licentric_monitor NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
END
$$;
-- What a non-superuser owner needs to hand the functions over (ALTER FUNCTION ... OWNER).
GRANT licentric_analytics TO CURRENT_USER;
GRANT licentric_monitor TO CURRENT_USER;
GRANT USAGE, CREATE ON SCHEMA public TO licentric_analytics;
GRANT USAGE, CREATE ON SCHEMA public TO licentric_monitor;

GRANT SELECT (tenant_id, position) ON log_heads TO licentric_analytics;
GRANT SELECT (tenant_id, position, updated_at) ON analytics_positions TO licentric_analytics;
CREATE POLICY analytics_scan ON log_heads FOR SELECT TO licentric_analytics USING (true);
CREATE POLICY analytics_scan ON analytics_positions FOR SELECT TO licentric_analytics
    USING (true);

-- Tenants whose log has events the analytics projection has not counted, least recently
-- served first, with the position to resume from. Tenant ids and positions only.
CREATE FUNCTION analytics_tenants_behind(p_limit integer)
RETURNS TABLE (tenant_id uuid, "position" bigint)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
    SELECT h.tenant_id, COALESCE(a.position, 0) FROM public.log_heads h
    LEFT JOIN public.analytics_positions a ON a.tenant_id = h.tenant_id
    WHERE h.position > COALESCE(a.position, 0)
    ORDER BY a.updated_at NULLS FIRST
    LIMIT LEAST(GREATEST(p_limit, 0), 1000)
$$;
ALTER FUNCTION analytics_tenants_behind(integer) OWNER TO licentric_analytics;
REVOKE ALL ON FUNCTION analytics_tenants_behind(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION analytics_tenants_behind(integer) TO licentric_app;

GRANT SELECT (tenant_id, position) ON log_heads TO licentric_monitor;
GRANT SELECT (tenant_id, position) ON analytics_positions TO licentric_monitor;
GRANT SELECT (tenant_id, position) ON resigner_positions TO licentric_monitor;
GRANT SELECT (tenant_id, consumer, position) ON webhook_outbox_heads TO licentric_monitor;
GRANT SELECT (tenant_id, deleted) ON webhook_endpoints TO licentric_monitor;
GRANT SELECT (tenant_id, state) ON webhook_deliveries TO licentric_monitor;
CREATE POLICY monitor_scan ON log_heads FOR SELECT TO licentric_monitor USING (true);
CREATE POLICY monitor_scan ON analytics_positions FOR SELECT TO licentric_monitor USING (true);
CREATE POLICY monitor_scan ON resigner_positions FOR SELECT TO licentric_monitor USING (true);
CREATE POLICY monitor_scan ON webhook_outbox_heads FOR SELECT TO licentric_monitor USING (true);
CREATE POLICY monitor_scan ON webhook_endpoints FOR SELECT TO licentric_monitor USING (true);
CREATE POLICY monitor_scan ON webhook_deliveries FOR SELECT TO licentric_monitor USING (true);

-- Events logged but not yet consumed, summed over tenants, per tailing consumer. The
-- webhook outbox only consumes tenants that have an endpoint, so only those count.
-- One pass over log_heads (one small row per tenant) per consumer.
CREATE FUNCTION consumer_lag()
RETURNS TABLE (consumer text, lag bigint)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
    SELECT 'analytics', COALESCE(sum(h.position - COALESCE(a.position, 0)), 0)::bigint
    FROM public.log_heads h
    LEFT JOIN public.analytics_positions a ON a.tenant_id = h.tenant_id
    UNION ALL
    SELECT 'resigner', COALESCE(sum(h.position - COALESCE(r.position, 0)), 0)::bigint
    FROM public.log_heads h
    LEFT JOIN public.resigner_positions r ON r.tenant_id = h.tenant_id
    UNION ALL
    SELECT 'webhooks', COALESCE(sum(h.position - COALESCE(o.position, 0)), 0)::bigint
    FROM public.log_heads h
    LEFT JOIN public.webhook_outbox_heads o
      ON o.tenant_id = h.tenant_id AND o.consumer = 'webhooks'
    WHERE EXISTS (SELECT 1 FROM public.webhook_endpoints w
                  WHERE w.tenant_id = h.tenant_id AND NOT w.deleted)
$$;
ALTER FUNCTION consumer_lag() OWNER TO licentric_monitor;
REVOKE ALL ON FUNCTION consumer_lag() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION consumer_lag() TO licentric_app;

-- Deliveries waiting to be sent (pending, in flight) and given up on (failed), over
-- all tenants. Counts only.
CREATE FUNCTION webhook_delivery_counts()
RETURNS TABLE (backlog bigint, failed bigint)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
    SELECT (SELECT count(*) FROM public.webhook_deliveries
            WHERE state IN ('pending', 'in_flight')),
           (SELECT count(*) FROM public.webhook_deliveries WHERE state = 'failed')
$$;
ALTER FUNCTION webhook_delivery_counts() OWNER TO licentric_monitor;
REVOKE ALL ON FUNCTION webhook_delivery_counts() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION webhook_delivery_counts() TO licentric_app;
