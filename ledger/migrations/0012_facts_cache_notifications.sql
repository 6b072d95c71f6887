-- 0012_facts_cache_notifications.sql
-- What: statement-level triggers on every table the validation read
--       (`validation_facts`, migration 0005) and the credential lookup read, which send
--       `pg_notify('licentric_facts', …)` naming what changed:
--         L|<tenant>|<license id>,…   licenses, machines, machine_heartbeats,
--                                     credential_lookup rows of licenses
--         P|<tenant>|<policy id>,…    policies
--         K|<tenant>|<api key id>,…   credential_lookup rows of API keys
--         T|<tenant>                  tenants (the response-signing secret), or a
--                                     statement that changed more than 100 rows
--         *                           TRUNCATE (a projection rebuild)
--       and `validation_facts` now also returns the license's `policyId`.
-- Why:  API processes keep the facts of recently validated licenses in memory
--       (api/facts_cache.py), so a validation costs no database round trip. A cache
--       is only as good as its invalidation: a trigger fires for *every* writer (the
--       API, the worker's timers, the re-signer, rebuilds, a DBA's UPDATE), so no code
--       path can forget to announce a change. NOTIFY is transactional: it is sent at
--       commit, after the change is visible, and never for a rolled-back change.
--       Statement-level with transition tables, so a bulk statement sends one message
--       (a rebuild's million rows do not become a million notifications).
-- Compatibility: additive. Processes that do not listen ignore the channel; a process
--       that listens and sees a message it does not understand drops its whole cache.

CREATE FUNCTION notify_facts_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
-- TG_ARGV[0]: the message kind (L, P, K or T); TG_ARGV[1]: the column naming the
-- changed thing; TG_ARGV[2]: for credential_lookup, which kind of credential it is.
DECLARE
    r record;
BEGIN
    FOR r IN EXECUTE format(
        'SELECT tenant_id::text AS tenant, count(*) AS n, '
        '       string_agg(DISTINCT %I::text, '','') AS ids '
        'FROM changed %s GROUP BY tenant_id',
        TG_ARGV[1],
        CASE WHEN TG_NARGS > 2 THEN format('WHERE kind = %L', TG_ARGV[2]) ELSE '' END)
    LOOP
        IF TG_ARGV[0] = 'T' OR r.n > 100 THEN
            PERFORM pg_notify('licentric_facts', 'T|' || r.tenant);
        ELSE
            PERFORM pg_notify('licentric_facts', TG_ARGV[0] || '|' || r.tenant || '|' || r.ids);
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;

CREATE FUNCTION notify_facts_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('licentric_facts', '*');
    RETURN NULL;
END
$$;

-- Three triggers per table (a trigger with transition tables names one event's table),
-- all sending the same kind of message.
DO $$
DECLARE
    spec record;
    ev   text;
    args text;
BEGIN
    FOR spec IN SELECT * FROM (VALUES
        ('licenses',           'L', 'id',         NULL),
        ('machines',           'L', 'license_id', NULL),
        ('machine_heartbeats', 'L', 'license_id', NULL),
        ('policies',           'P', 'id',         NULL),
        ('tenants',            'T', 'tenant_id',  NULL),
        ('credential_lookup',  'L', 'ref_id',     'license'),
        ('credential_lookup',  'K', 'ref_id',     'api_key')
    ) AS s(tbl, kind, col, cred) LOOP
        args := format('%L, %L', spec.kind, spec.col)
             || CASE WHEN spec.cred IS NULL THEN '' ELSE format(', %L', spec.cred) END;
        FOREACH ev IN ARRAY ARRAY['insert', 'update', 'delete'] LOOP
            EXECUTE format(
                'CREATE TRIGGER %I AFTER %s ON %I REFERENCING %s TABLE AS changed '
                'FOR EACH STATEMENT EXECUTE FUNCTION notify_facts_changed(%s)',
                format('facts_%s_%s_%s', lower(spec.kind), ev, coalesce(spec.cred, 'row')),
                upper(ev), spec.tbl,
                CASE WHEN ev = 'delete' THEN 'OLD' ELSE 'NEW' END,
                args);
        END LOOP;
    END LOOP;
    FOR spec IN SELECT unnest(ARRAY['licenses', 'machines', 'machine_heartbeats',
                                    'policies', 'tenants', 'credential_lookup']) AS tbl LOOP
        EXECUTE format(
            'CREATE TRIGGER facts_truncate AFTER TRUNCATE ON %I '
            'FOR EACH STATEMENT EXECUTE FUNCTION notify_facts_truncated()', spec.tbl);
    END LOOP;
END
$$;

-- The same read as 0005, plus the license's policy id (the cache drops a policy's
-- licenses when the policy changes).
CREATE OR REPLACE FUNCTION validation_facts(p_tenant uuid, p_license uuid)
RETURNS TABLE (tenant_id uuid, response_secret text, facts text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    PERFORM set_config('app.tenant', p_tenant::text, true);
    RETURN QUERY
    SELECT l.tenant_id, t.encrypted_response_secret, jsonb_build_object(
        'license', jsonb_build_object(
            'id', l.id,
            'policyId', l.policy_id,
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
