-- 0018_checkout_facts_pruned.sql
-- What: `checkout_facts` (0016) reads the stream's version with the function's own
--       parameters (`e.tenant_id = p_tenant AND e.stream_id = p_license`) instead of
--       the license row's columns. Same rows, same single snapshot.
-- Why:  `events` is hash-partitioned by tenant (0001). Correlated with the outer row,
--       the tenant is known only per execution of the subquery, so PostgreSQL set up
--       an index scan on every one of the 16 partitions (a MergeAppend under the max's
--       LIMIT) each call and pruned them afterwards: perf showed ExecInitNode under
--       that subquery as about a quarter of the database CPU a checkout costs. With a
--       parameter the partition is pruned before the scans are built (the plan cache's
--       generic plan prunes at executor start-up, a custom plan at planning): measured
--       as the app role, one connection, 3,000 calls of the query: 243 -> 173 µs of
--       backend CPU per call.
-- Compatibility: same signature and result; replaces the function in place.

CREATE OR REPLACE FUNCTION checkout_facts(p_tenant uuid, p_license uuid)
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
        -- The parameters, not l.tenant_id / l.id: see the header.
        (SELECT max(e.version) FROM events e
         WHERE e.tenant_id = p_tenant AND e.stream_id = p_license)
    FROM licenses l
    JOIN policies p ON p.tenant_id = l.tenant_id AND p.id = l.policy_id
    LEFT JOIN signing_keys k ON k.tenant_id = l.tenant_id AND k.status = 'active'
    WHERE l.tenant_id = p_tenant AND l.id = p_license AND NOT l.deleted;
END
$$;
