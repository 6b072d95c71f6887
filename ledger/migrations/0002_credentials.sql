-- 0002_credentials.sql
-- What: the API-key read model and the one narrow cross-tenant lookup: credential hash
--       -> (tenant, credential id), for requests that arrive before any tenant is known.
-- Why:  authentication must find the tenant from the key itself. `credential_lookup`
--       has RLS enabled but NOT forced, and no SELECT grant: only the owner-defined
--       SECURITY DEFINER function below reads across tenants, one hash at a time.
--       Hashes are HMAC-SHA256 with a server pepper of 256-bit random keys, so the global
--       primary key reveals nothing about other tenants.
-- Compatibility: additive.

CREATE TABLE credential_lookup (
    key_hash  bytea PRIMARY KEY,
    tenant_id uuid NOT NULL,
    kind      text NOT NULL CHECK (kind IN ('api_key', 'license')),
    ref_id    uuid NOT NULL
);
ALTER TABLE credential_lookup ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON credential_lookup
    USING (tenant_id = current_tenant()) WITH CHECK (tenant_id = current_tenant());
GRANT INSERT, DELETE ON credential_lookup TO licentric_app;

CREATE FUNCTION resolve_credential(p_hash bytea, p_kind text)
RETURNS TABLE (tenant_id uuid, ref_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
    SELECT c.tenant_id, c.ref_id FROM public.credential_lookup c
    WHERE c.key_hash = p_hash AND c.kind = p_kind
$$;
REVOKE ALL ON FUNCTION resolve_credential(bytea, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION resolve_credential(bytea, text) TO licentric_app;

CREATE TABLE api_keys (
    tenant_id  uuid        NOT NULL,
    id         uuid        NOT NULL,
    name       text        NOT NULL,
    scopes     text[]      NOT NULL,
    prefix     text        NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz,
    revoked_at timestamptz,
    PRIMARY KEY (tenant_id, id)
);
ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON api_keys
    USING (tenant_id = current_tenant()) WITH CHECK (tenant_id = current_tenant());
GRANT SELECT, INSERT, UPDATE, DELETE ON api_keys TO licentric_app;
GRANT UPDATE ON tenants TO licentric_app;
