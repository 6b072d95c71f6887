-- 0016_checkout_statements.sql
-- What: two functions for an offline checkout (API.md §7):
--       `checkout_facts(tenant, license)`: everything deciding and rendering its file
--       reads — the license row (document, expiry, stored status), its policy's
--       document, its active machines' documents, the environment's active signing key
--       and the license stream's current version — in ONE query, so one snapshot;
--       `record_checkout(…)`: the `license.checked_out` append (append_events, 0013) and
--       the checkouts read model's changes (the new row; the rows of checkouts that had
--       expired by then) in one call.
-- Why:  a checkout used to load the License aggregate (up to 100 events replayed),
--       append through the library and re-project every read model of the license:
--       ~29 round trips and ~10 ms of CPU. A checkout changes nothing but its own row
--       (License.updated_at leaves offline events out, ledger/domain/license_checkouts.py),
--       so it is now three statements: the credential, these facts, this record.
--       Exact under concurrency: the version is read in the same snapshot as the facts,
--       and the event is appended at version + 1; a command that changed the license
--       meanwhile holds that version, the unique (tenant, stream, version) key refuses
--       the append, and the checkout is decided again from fresh facts. A command that
--       keeps losing such races takes the license's advisory lock exclusively
--       (LedgerApplication.execute), which `record_checkout` takes shared: the flow of
--       checkouts pauses for it instead of starving it.
-- Compatibility: additive. Licenses whose last event was an offline one keep a stored
--       `updatedAt` that a rebuild now computes earlier; `licentric projections rebuild`
--       brings them in line (docs/offline.md).

CREATE FUNCTION checkout_facts(p_tenant uuid, p_license uuid)
RETURNS TABLE (license_doc jsonb, expires_at timestamptz, status text, policy_doc jsonb,
               machines jsonb, kid text, public_key text, encrypted_seed text,
               key_created_at timestamptz, version bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    PERFORM set_config('app.tenant', p_tenant::text, true);
    -- One query: under READ COMMITTED every statement of a function takes a snapshot of
    -- its own, and the version must be that of the facts it is read with.
    RETURN QUERY
    SELECT l.doc, l.expires_at, l.status, p.doc,
        COALESCE((SELECT jsonb_agg(m.doc ORDER BY m.created_at, m.id) FROM machines m
                  WHERE m.tenant_id = l.tenant_id AND m.license_id = l.id AND m.active),
                 '[]'::jsonb),
        k.kid, k.public_key, k.encrypted_seed, k.created_at,
        (SELECT max(e.version) FROM events e
         WHERE e.tenant_id = l.tenant_id AND e.stream_id = l.id)
    FROM licenses l
    JOIN policies p ON p.tenant_id = l.tenant_id AND p.id = l.policy_id
    LEFT JOIN signing_keys k ON k.tenant_id = l.tenant_id AND k.status = 'active'
    WHERE l.tenant_id = p_tenant AND l.id = p_license AND NOT l.deleted;
END
$$;
REVOKE ALL ON FUNCTION checkout_facts(uuid, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION checkout_facts(uuid, uuid) TO licentric_app;

CREATE FUNCTION record_checkout(
    p_tenant      uuid,
    p_events      jsonb,
    p_metadata    jsonb,
    p_recorded_at timestamptz,
    p_license     uuid,
    p_checkout    uuid,
    p_issued_at   timestamptz,
    p_expires_at  timestamptz,
    p_file_digest text,
    p_doc         jsonb
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    last bigint;
BEGIN
    -- Shared: checkouts do not wait for each other (their versions decide), only for a
    -- command that took the license's stream lock after losing races to them
    -- (LedgerApplication.execute): the key is the one it takes, "<tenant>:<stream>".
    PERFORM pg_advisory_xact_lock_shared(hashtextextended(p_tenant::text || ':' || p_license::text, 0));
    last := append_events(p_tenant, p_events, p_metadata, p_recorded_at);
    -- What the projection keeps (projections/offline.py): the checkouts unexpired as of
    -- the license's last event, which is this one.
    DELETE FROM offline_checkouts
    WHERE tenant_id = p_tenant AND license_id = p_license AND expires_at <= p_issued_at;
    INSERT INTO offline_checkouts
        (tenant_id, id, license_id, issued_at, expires_at, file_digest, doc)
    VALUES (p_tenant, p_checkout, p_license, p_issued_at, p_expires_at, p_file_digest, p_doc);
    RETURN last;
END
$$;
REVOKE ALL ON FUNCTION record_checkout(uuid, jsonb, jsonb, timestamptz, uuid, uuid,
    timestamptz, timestamptz, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION record_checkout(uuid, jsonb, jsonb, timestamptz, uuid, uuid,
    timestamptz, timestamptz, text, jsonb) TO licentric_app;
