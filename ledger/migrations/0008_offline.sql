-- 0008_offline.sql
-- What: the offline read models (each checkout with its current license file; each
--       environment's Ed25519 public keys), the re-signer's position per tenant, and
--       the one narrow cross-tenant listing the re-signer starts from.
-- Why:  `GET /licenses/{id}/checkouts` and `GET /signing-keys` read rows written by
--       projections/offline.py in the same transaction as the events (the file itself
--       is in the `license.checked_out` / `license.file_regenerated` event, so the rows
--       are a function of the events). A checkout row lives while its checkout is
--       unexpired as of the license's last event; the list also filters on now().
--       The re-signer (workers/resigner.py) tails each tenant's log from its stored
--       position. It runs as the app role (no BYPASSRLS), which cannot see which
--       tenants have new events; `resigner_tenants_behind` answers only that (tenant
--       ids and positions, nothing of any row), as a NOLOGIN role whose only reach is a
--       SELECT policy on the two columns it reads (RLS is forced on log_heads, so even
--       its owner sees nothing without a policy).
-- Compatibility: additive; old code ignores these tables and the function. Environments
--       created before this migration get their signing_keys rows with
--       `licentric projections rebuild --name signing_keys` (until then checkouts load the
--       environment from its stream, and GET /signing-keys lists nothing).

CREATE TABLE offline_checkouts (
    tenant_id  uuid        NOT NULL,
    id         uuid        NOT NULL,
    license_id uuid        NOT NULL,
    issued_at  timestamptz NOT NULL,
    -- The checkout's end (issue time + ttl): until then the re-signer keeps its file current.
    expires_at timestamptz NOT NULL,
    -- What the current file says (ledger.offline.content): a save rewrites only the rows
    -- whose file changed, not every unexpired checkout of the license.
    file_digest text,
    doc        jsonb       NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX offline_checkouts_license ON offline_checkouts (tenant_id, license_id, issued_at, id);
CREATE INDEX offline_checkouts_unexpired ON offline_checkouts (tenant_id, expires_at);

CREATE TABLE signing_keys (
    tenant_id  uuid        NOT NULL,
    kid        text        NOT NULL,
    public_key text        NOT NULL,
    status     text        NOT NULL CHECK (status IN ('active', 'retired')),
    -- AES-GCM under the master key (context "<tenant>:signing-seed:<kid>"), as in the
    -- environment's events: a checkout reads its key here instead of replaying the
    -- environment. Never selected by the API's key list.
    encrypted_seed text    NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, kid)
);
CREATE INDEX signing_keys_list ON signing_keys (tenant_id, created_at, kid);

-- The re-signer's position in each tenant's log: written in the same transaction as the
-- regenerated files of the batch that moved it (or alone when a batch changed nothing).
CREATE TABLE resigner_positions (
    tenant_id  uuid        PRIMARY KEY,
    position   bigint      NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['offline_checkouts', 'signing_keys', 'resigner_positions'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I USING (tenant_id = current_tenant())'
            ' WITH CHECK (tenant_id = current_tenant())', t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE ON %I TO licentric_app', t);
    END LOOP;
END
$$;
-- A checkout row goes once its checkout has expired (rebuilds never recreate it).
GRANT DELETE ON offline_checkouts TO licentric_app;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'licentric_resigner') THEN
        CREATE ROLE licentric_resigner NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
END
$$;
-- What a non-superuser owner needs to hand the function over (ALTER FUNCTION ... OWNER).
GRANT licentric_resigner TO CURRENT_USER;
GRANT USAGE, CREATE ON SCHEMA public TO licentric_resigner;
GRANT SELECT (tenant_id, position) ON log_heads TO licentric_resigner;
GRANT SELECT (tenant_id, position, updated_at) ON resigner_positions TO licentric_resigner;
CREATE POLICY resigner_scan ON log_heads FOR SELECT TO licentric_resigner USING (true);
CREATE POLICY resigner_scan ON resigner_positions FOR SELECT TO licentric_resigner USING (true);

-- Tenants whose log has events the re-signer has not looked at, least recently served
-- first (so one busy tenant cannot starve the others), with the position to resume from.
-- One pass over log_heads (one small row per tenant) per poll.
CREATE FUNCTION resigner_tenants_behind(p_limit integer)
RETURNS TABLE (tenant_id uuid, "position" bigint)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
    SELECT h.tenant_id, COALESCE(r.position, 0) FROM public.log_heads h
    LEFT JOIN public.resigner_positions r ON r.tenant_id = h.tenant_id
    WHERE h.position > COALESCE(r.position, 0)
    ORDER BY r.updated_at NULLS FIRST
    LIMIT LEAST(GREATEST(p_limit, 0), 1000)
$$;
ALTER FUNCTION resigner_tenants_behind(integer) OWNER TO licentric_resigner;
REVOKE ALL ON FUNCTION resigner_tenants_behind(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION resigner_tenants_behind(integer) TO licentric_app;
