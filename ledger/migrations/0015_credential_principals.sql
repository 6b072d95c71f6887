-- 0015_credential_principals.sql
-- What: `api_key_principal(hash)` and `license_principal(hash)`: the credential
--       lookup and the reads after it (the key's scopes, expiry and environment; the
--       license's environment) in one call.
-- Why:  every authenticated request resolved its credential in a transaction of its
--       own — BEGIN; resolve_credential; set the tenant; SELECT; COMMIT — five round
--       trips before the request did any work. Called as one statement, one. Like
--       `validation_facts_by_key` (0005): the tenant comes from the narrow SECURITY
--       DEFINER `resolve_credential`, and is set (transaction-local) before the rest is
--       read under row-level security, so the function itself reads nothing across
--       tenants. In a caller's transaction the tenant stays set, as before.
-- Compatibility: additive.

CREATE FUNCTION api_key_principal(p_hash bytea)
RETURNS TABLE (tenant_id uuid, api_key_id uuid, environment text, scopes text[],
               expires_at timestamptz)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_tenant uuid;
    v_key    uuid;
BEGIN
    SELECT c.tenant_id, c.ref_id INTO v_tenant, v_key
    FROM resolve_credential(p_hash, 'api_key') c;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    PERFORM set_config('app.tenant', v_tenant::text, true);
    RETURN QUERY
    SELECT k.tenant_id, k.id, t.environment, k.scopes, k.expires_at
    FROM api_keys k JOIN tenants t ON t.tenant_id = k.tenant_id
    WHERE k.tenant_id = v_tenant AND k.id = v_key AND k.revoked_at IS NULL;
END
$$;
REVOKE ALL ON FUNCTION api_key_principal(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api_key_principal(bytea) TO licentric_app;

CREATE FUNCTION license_principal(p_hash bytea)
RETURNS TABLE (tenant_id uuid, license_id uuid, environment text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_tenant  uuid;
    v_license uuid;
BEGIN
    SELECT c.tenant_id, c.ref_id INTO v_tenant, v_license
    FROM resolve_credential(p_hash, 'license') c;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    PERFORM set_config('app.tenant', v_tenant::text, true);
    RETURN QUERY
    SELECT t.tenant_id, v_license, t.environment
    FROM tenants t WHERE t.tenant_id = v_tenant;
END
$$;
REVOKE ALL ON FUNCTION license_principal(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION license_principal(bytea) TO licentric_app;
