-- 0001_event_store.sql
-- What: the app role, the tenant registry, the per-tenant log head, the append-only
--       `events` table (hash-partitioned by tenant, forced row-level security) and
--       aggregate snapshots.
-- Why:  every later table follows the same rules: tenant id first in every key, RLS
--       with NULLIF(current_setting('app.tenant', true), '') so a connection with no
--       tenant set sees zero rows (current_setting returns '' after a transaction-local
--       set has ended, not NULL).
-- Compatibility: first migration.
-- Parameters: licentric.partitions (set by `licentric migrate --partitions N`).

-- The API and workers run as this role (the pool connects with `-c role=licentric_app`):
-- not the owner, not superuser, no BYPASSRLS, so RLS always applies to it.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'licentric_app') THEN
        CREATE ROLE licentric_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
END
$$;
-- The deployment's login role must be able to SET ROLE to the app role.
GRANT licentric_app TO CURRENT_USER;
GRANT USAGE ON SCHEMA public TO licentric_app;

CREATE FUNCTION current_tenant() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT NULLIF(current_setting('app.tenant', true), '')::uuid $$;

-- One row per (account, environment): live and test of one account are two tenants.
CREATE TABLE tenants (
    tenant_id   uuid PRIMARY KEY,
    account_id  uuid NOT NULL,
    environment text NOT NULL CHECK (environment IN ('live', 'test')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, environment)
);

-- Per-tenant log head. Appends take this row's lock (UPDATE ... RETURNING), which
-- serializes appends *within* a tenant only: positions are gapless and follow commit
-- order per tenant, while different tenants append in parallel. This replaces the
-- library's table-wide `LOCK TABLE ... EXCLUSIVE`, which serializes every tenant.
CREATE TABLE log_heads (
    tenant_id uuid PRIMARY KEY,
    position  bigint NOT NULL,
    hash      bytea NOT NULL
);

CREATE TABLE events (
    tenant_id      uuid        NOT NULL,
    position       bigint      NOT NULL,
    stream_id      uuid        NOT NULL,
    stream_type    text        NOT NULL,
    version        bigint      NOT NULL,
    event_id       uuid        NOT NULL,
    event_type     text        NOT NULL,
    schema_version integer     NOT NULL,
    data           jsonb       NOT NULL,
    metadata       jsonb       NOT NULL,
    occurred_at    timestamptz NOT NULL,
    recorded_at    timestamptz NOT NULL,
    hash           bytea       NOT NULL,
    PRIMARY KEY (tenant_id, position),
    -- Optimistic concurrency: two commands racing on one stream produce the same
    -- (tenant, stream, version); exactly one insert wins.
    CONSTRAINT events_stream_version_key UNIQUE (tenant_id, stream_id, version)
) PARTITION BY HASH (tenant_id);

-- Events are facts: nobody updates or deletes them, whatever their grants.
CREATE FUNCTION refuse_event_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
DO $$
DECLARE
    n integer := COALESCE(NULLIF(current_setting('licentric.partitions', true), ''), '16')::integer;
BEGIN
    FOR i IN 0 .. n - 1 LOOP
        EXECUTE format(
            'CREATE TABLE events_p%s PARTITION OF events FOR VALUES WITH (MODULUS %s, REMAINDER %s)',
            i, n, i);
        -- Statement-level TRUNCATE triggers are not cloned to partitions: add each.
        EXECUTE format(
            'CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events_p%s'
            ' FOR EACH STATEMENT EXECUTE FUNCTION refuse_event_change()', i);
        -- Partitions are never granted to the app role; RLS on them too, in case.
        EXECUTE format('ALTER TABLE events_p%s ENABLE ROW LEVEL SECURITY', i);
        EXECUTE format('ALTER TABLE events_p%s FORCE ROW LEVEL SECURITY', i);
    END LOOP;
END
$$;

CREATE TRIGGER events_append_only
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION refuse_event_change();
CREATE TRIGGER events_no_truncate
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_event_change();

-- append_events: the one write path into the log (one statement per command).
-- Sets the tenant for its transaction (no wider than what the app role may do anyway),
-- takes the tenant's head row lock (so positions are gapless and in commit order per
-- tenant, while other tenants append in parallel), links each event into the tenant's
-- hash chain and inserts the rows.
-- No NOTIFY here: a notifying transaction holds a database-wide lock from pre-commit
-- through its commit flush, which serialized every tenant's appends again (measured:
-- 2,217 -> 3,110 appends/s at 8 writers without it). Wake-ups are sent after commit,
-- coalesced (ledger/store/wakeups.py); consumers also poll.
-- Chain: hash(n) = sha256(hash(n-1) || int8send(position) || digest(n)), where digest is
-- SHA-256 of the event's canonical JSON without its position (computed by the caller,
-- see ledger/store/hashchain.py) and hash(0) is 32 zero bytes.
-- The batch arrives as one JSON array: one parameter to encode instead of twelve arrays.
-- SECURITY INVOKER: runs as the app role, so RLS WITH CHECK still guards every insert.
CREATE FUNCTION append_events(
    p_tenant      uuid,
    p_events      jsonb,
    p_metadata    jsonb,
    p_recorded_at timestamptz
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    last     bigint;
    previous bytea;
    pos      bigint;
    e        jsonb;
BEGIN
    PERFORM set_config('app.tenant', p_tenant::text, true);
    -- Lock the head row (held to commit), then write it once at the end: one new row
    -- version per append instead of two (an upsert, then the hash).
    SELECT h.position, h.hash INTO last, previous
    FROM log_heads h WHERE h.tenant_id = p_tenant FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO log_heads (tenant_id, position, hash)
        VALUES (p_tenant, 0, '\x0000000000000000000000000000000000000000000000000000000000000000')
        ON CONFLICT (tenant_id) DO NOTHING;
        SELECT h.position, h.hash INTO last, previous
        FROM log_heads h WHERE h.tenant_id = p_tenant FOR UPDATE;
    END IF;
    pos := last;
    FOR e IN SELECT value FROM jsonb_array_elements(p_events) LOOP
        pos := pos + 1;
        previous := sha256(previous || int8send(pos) || decode(e->>'digest', 'hex'));
        INSERT INTO events (tenant_id, position, stream_id, stream_type, version, event_id,
            event_type, schema_version, data, metadata, occurred_at, recorded_at, hash)
        VALUES (p_tenant, pos, (e->>'stream')::uuid, e->>'streamType',
            (e->>'version')::bigint, (e->>'id')::uuid, e->>'type',
            (e->>'schemaVersion')::integer, e->'data', p_metadata,
            (e->>'occurredAt')::timestamptz, p_recorded_at, previous);
    END LOOP;
    UPDATE log_heads SET position = pos, hash = previous WHERE tenant_id = p_tenant;
    last := pos;
    RETURN last;
END
$$;
GRANT EXECUTE ON FUNCTION append_events TO licentric_app;

-- Snapshots are a cache of replayed state (rebuildable, not part of the hash chain).
CREATE TABLE snapshots (
    tenant_id uuid   NOT NULL,
    stream_id uuid   NOT NULL,
    version   bigint NOT NULL,
    topic     text   NOT NULL,
    state     bytea  NOT NULL,
    PRIMARY KEY (tenant_id, stream_id, version)
);

-- Row-level security: one policy shape for every tenant table.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['tenants', 'log_heads', 'events', 'snapshots'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I USING (tenant_id = current_tenant())'
            ' WITH CHECK (tenant_id = current_tenant())', t);
    END LOOP;
END
$$;

GRANT SELECT, INSERT ON events, snapshots, tenants TO licentric_app;
GRANT SELECT, INSERT, UPDATE ON log_heads TO licentric_app;
