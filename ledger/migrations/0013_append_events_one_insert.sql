-- 0013_append_events_one_insert.sql
-- What: `append_events` (0001) inserts a batch with one INSERT … SELECT instead of one
--       INSERT per event. The hash links are still computed one by one in the loop
--       (each needs the previous), into an array; the insert then joins the batch
--       with it by ordinality.
-- Why:  validation events arrive in batches of hundreds (api/validation_events.py): a
--       PL/pgSQL INSERT per row paid executor start-up per event, most of the database
--       CPU a validation costs. Same rows, same positions, same hashes, same locks.
-- Compatibility: same signature and result; replaces the function in place.

CREATE OR REPLACE FUNCTION append_events(
    p_tenant      uuid,
    p_events      jsonb,
    p_metadata    jsonb,
    p_recorded_at timestamptz
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    last     bigint;
    previous bytea;
    hashes   bytea[] := '{}';
    e        jsonb;
BEGIN
    PERFORM set_config('app.tenant', p_tenant::text, true);
    SELECT h.position, h.hash INTO last, previous
    FROM log_heads h WHERE h.tenant_id = p_tenant FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO log_heads (tenant_id, position, hash)
        VALUES (p_tenant, 0, '\x0000000000000000000000000000000000000000000000000000000000000000')
        ON CONFLICT (tenant_id) DO NOTHING;
        SELECT h.position, h.hash INTO last, previous
        FROM log_heads h WHERE h.tenant_id = p_tenant FOR UPDATE;
    END IF;
    FOR e IN SELECT value FROM jsonb_array_elements(p_events) LOOP
        previous := sha256(previous || int8send(last + cardinality(hashes) + 1)
                           || decode(e->>'digest', 'hex'));
        hashes := hashes || previous;
    END LOOP;
    INSERT INTO events (tenant_id, position, stream_id, stream_type, version, event_id,
        event_type, schema_version, data, metadata, occurred_at, recorded_at, hash)
    SELECT p_tenant, last + b.n, (b.e->>'stream')::uuid, b.e->>'streamType',
        (b.e->>'version')::bigint, (b.e->>'id')::uuid, b.e->>'type',
        (b.e->>'schemaVersion')::integer, b.e->'data', p_metadata,
        (b.e->>'occurredAt')::timestamptz, p_recorded_at, hashes[b.n]
    FROM jsonb_array_elements(p_events) WITH ORDINALITY AS b(e, n)
    ORDER BY b.n;
    last := last + cardinality(hashes);
    UPDATE log_heads SET position = last, hash = previous WHERE tenant_id = p_tenant;
    RETURN last;
END
$$;
