-- 0005_validation.sql
-- What: what the validation hot path reads, in one round trip:
--       - tenants.encrypted_response_secret: the environment's response-signing secret
--         (AES-GCM ciphertext, as in its events), so signing a response never replays
--         the environment stream;
--       - licenses.activated_at: when the first `valid: true` was recorded
--         (`license.activated`), so validation knows without loading the aggregate
--         whether this one is the first;
--       - validation_facts(tenant, license) and validation_facts_by_key(hash): one call
--         that (by key) resolves the tenant through the narrow SECURITY DEFINER
--         `resolve_credential`, sets the tenant for its own transaction, and returns the
--         license, its policy and its active machines (each with its latest ping from
--         `machine_heartbeats`) as one compact JSON text, plus the tenant's secret.
-- Why:  API.md §5 / ARCHITECTURE.md §4: one indexed read, a pure decision, one
--       serialization, one HMAC. Called as one autocommit statement, the whole read is
--       one round trip and one transaction; `app.tenant` is transaction-local, so it
--       ends with the statement.
-- Compatibility: additive. Old code ignores the new columns and functions; the backfill
--       below fills them for existing data, and projections keep them current.

ALTER TABLE tenants ADD COLUMN encrypted_response_secret text;
ALTER TABLE licenses ADD COLUMN activated_at timestamptz;

-- Backfill from the events. Tables force row-level security (even for their owner), so
-- visit each tenant under its own setting. credential_lookup does not force RLS: the
-- owner running migrations can list the tenants from it (each has an API key).
DO $$
DECLARE
    t uuid;
BEGIN
    FOR t IN SELECT DISTINCT c.tenant_id FROM credential_lookup c LOOP
        PERFORM set_config('app.tenant', t::text, true);
        UPDATE tenants SET encrypted_response_secret = (
            SELECT COALESCE(e.data->>'encrypted_secret', e.data->>'encrypted_response_secret')
            FROM events e
            WHERE e.tenant_id = t AND e.stream_id = t
              AND e.event_type IN ('environment.created', 'environment.response_secret_rotated')
            ORDER BY e.version DESC LIMIT 1)
        WHERE tenant_id = t;
        UPDATE licenses l SET activated_at = a.occurred_at
        FROM (SELECT e.stream_id, min(e.occurred_at) AS occurred_at FROM events e
              WHERE e.tenant_id = t AND e.event_type = 'license.activated'
              GROUP BY e.stream_id) a
        WHERE l.tenant_id = t AND l.id = a.stream_id;
    END LOOP;
    PERFORM set_config('app.tenant', '', true);
END
$$;

-- SECURITY INVOKER: runs as the app role, so row-level security filters every read by
-- the tenant it sets (as append_events does; the app role may set any tenant anyway).
CREATE FUNCTION validation_facts(p_tenant uuid, p_license uuid)
RETURNS TABLE (tenant_id uuid, response_secret text, facts text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    PERFORM set_config('app.tenant', p_tenant::text, true);
    RETURN QUERY
    SELECT l.tenant_id, t.encrypted_response_secret, jsonb_build_object(
        'license', jsonb_build_object(
            'id', l.id,
            'status', l.status,
            'name', l.doc->'name',
            'expiresAt', l.doc->'expiresAt',
            'usesCount', l.doc->'usesCount',
            'maxMachinesOverride', l.doc->'maxMachinesOverride',
            'maxUsesOverride', l.doc->'maxUsesOverride',
            'entitlements', l.doc->'entitlements',
            'activated', l.activated_at IS NOT NULL),
        'policy', jsonb_build_object(
            'maxMachines', p.doc->'maxMachines',
            'maxUses', p.doc->'maxUses',
            'floating', p.doc->'floating',
            'expirationStrategy', p.doc->'expirationStrategy',
            'requireHeartbeat', p.doc->'requireHeartbeat',
            'heartbeatIntervalMinutes', p.doc->'heartbeatIntervalMinutes',
            'requireFingerprint', p.doc->'requireFingerprint',
            'overridable', p.doc->'overridable',
            'entitlements', p.doc->'entitlements'),
        -- A ping updates the last-seen row, not the document (no event per ping):
        -- a machine's latest heartbeat is the later of the two.
        'machines', COALESCE((
            SELECT jsonb_agg(jsonb_build_object(
                'id', m.id,
                'fingerprint', m.fingerprint,
                'name', m.doc->'name',
                'heartbeatStatus', m.doc->'heartbeatStatus',
                'createdAt', m.doc->'createdAt',
                'lastSeenAt', to_jsonb(GREATEST((m.doc->>'lastHeartbeatAt')::timestamptz,
                                                h.last_heartbeat_at) AT TIME ZONE 'UTC'))
                ORDER BY m.created_at, m.id)
            FROM machines m
            LEFT JOIN machine_heartbeats h
                ON h.tenant_id = m.tenant_id AND h.machine_id = m.id
            WHERE m.tenant_id = l.tenant_id AND m.license_id = l.id AND m.active), '[]'::jsonb)
    )::text
    FROM licenses l
    JOIN policies p ON p.tenant_id = l.tenant_id AND p.id = l.policy_id
    JOIN tenants t ON t.tenant_id = l.tenant_id
    WHERE l.tenant_id = p_tenant AND l.id = p_license AND NOT l.deleted;
END
$$;
REVOKE ALL ON FUNCTION validation_facts(uuid, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION validation_facts(uuid, uuid) TO licentric_app;

-- By license key hash: no row when the key is unknown or its license deleted (its
-- credential row is removed then), which the caller answers as NOT_FOUND.
CREATE FUNCTION validation_facts_by_key(p_hash bytea)
RETURNS TABLE (tenant_id uuid, response_secret text, facts text)
LANGUAGE plpgsql AS $$
DECLARE
    v_tenant  uuid;
    v_license uuid;
BEGIN
    SELECT c.tenant_id, c.ref_id INTO v_tenant, v_license
    FROM resolve_credential(p_hash, 'license') c;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    RETURN QUERY SELECT * FROM validation_facts(v_tenant, v_license);
END
$$;
REVOKE ALL ON FUNCTION validation_facts_by_key(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION validation_facts_by_key(bytea) TO licentric_app;
