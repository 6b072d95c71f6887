-- 0014_load_stream.sql
-- What: `load_stream(tenant, stream)`: a stream's latest snapshot (if any) followed by
--       its events after that snapshot, in version order, in one call.
-- Why:  loading an aggregate took two transactions — the snapshot read, then the events
--       read — each BEGIN; set the tenant; SELECT; COMMIT: eight round trips, for every
--       command (a checkout or an activation loads the license, sometimes its policy
--       and environment too). Called as one autocommit statement, this is one. The
--       function sets `app.tenant` for its own transaction, so row-level security
--       filters both reads exactly as before (SECURITY INVOKER, like append_events).
--       Reading the snapshot and then the events after it in two statements is what the
--       library does in two transactions: events are append-only, so a later read only
--       sees more of them.
-- Compatibility: additive; old code keeps its two reads.

CREATE FUNCTION load_stream(p_tenant uuid, p_stream uuid)
RETURNS TABLE (version bigint, topic text, state bytea, event_type text,
               schema_version integer, data jsonb, occurred_at timestamptz)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    after bigint := 0;
BEGIN
    PERFORM set_config('app.tenant', p_tenant::text, true);
    -- The snapshot row first (topic and state set, event columns NULL) ...
    RETURN QUERY
    SELECT s.version, s.topic, s.state, NULL::text, NULL::integer, NULL::jsonb,
           NULL::timestamptz
    FROM snapshots s
    WHERE s.tenant_id = p_tenant AND s.stream_id = p_stream
    ORDER BY s.version DESC LIMIT 1;
    IF FOUND THEN
        SELECT max(s.version) INTO after
        FROM snapshots s WHERE s.tenant_id = p_tenant AND s.stream_id = p_stream;
    END IF;
    -- ... then the events after it (event columns set, topic and state NULL).
    RETURN QUERY
    SELECT e.version, NULL::text, NULL::bytea, e.event_type, e.schema_version, e.data,
           e.occurred_at
    FROM events e
    WHERE e.tenant_id = p_tenant AND e.stream_id = p_stream AND e.version > after
    ORDER BY e.version;
END
$$;
REVOKE ALL ON FUNCTION load_stream(uuid, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION load_stream(uuid, uuid) TO licentric_app;
