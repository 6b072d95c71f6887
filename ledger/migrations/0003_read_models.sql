-- 0003_read_models.sql
-- What: the inline read models of the catalogue and of licenses (products, policies,
--       entitlements, licenses, machines) and the Idempotency-Key store.
-- Why:  reads never replay events; each row is written by `projections/` in the same
--       transaction as the events that change it (read-your-writes). Each row keeps the
--       columns reads filter and sort on, plus `doc`: the camelCase wire document the
--       projection derived from the aggregate, so a rebuild compares documents.
--       Uniqueness the API promises (product code, entitlement code per environment) is
--       a partial unique index here: the losing command's transaction, events included,
--       rolls back. Indexes lead with tenant_id (Citus-ready, and RLS filters on it).
-- Compatibility: additive; old code ignores these tables.

CREATE TABLE products (
    tenant_id  uuid        NOT NULL,
    id         uuid        NOT NULL,
    code       text        NOT NULL,
    created_at timestamptz NOT NULL,
    deleted    boolean     NOT NULL DEFAULT false,
    doc        jsonb       NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX products_code_key ON products (tenant_id, code) WHERE NOT deleted;
CREATE INDEX products_list ON products (tenant_id, created_at, id) WHERE NOT deleted;

CREATE TABLE policies (
    tenant_id  uuid        NOT NULL,
    id         uuid        NOT NULL,
    product_id uuid        NOT NULL,
    created_at timestamptz NOT NULL,
    deleted    boolean     NOT NULL DEFAULT false,
    doc        jsonb       NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX policies_list ON policies (tenant_id, created_at, id) WHERE NOT deleted;
CREATE INDEX policies_product ON policies (tenant_id, product_id) WHERE NOT deleted;

CREATE TABLE entitlements (
    tenant_id  uuid        NOT NULL,
    id         uuid        NOT NULL,
    code       text        NOT NULL,
    created_at timestamptz NOT NULL,
    deleted    boolean     NOT NULL DEFAULT false,
    doc        jsonb       NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX entitlements_code_key ON entitlements (tenant_id, code) WHERE NOT deleted;
CREATE INDEX entitlements_list ON entitlements (tenant_id, created_at, id) WHERE NOT deleted;

-- `status` is the stored status (active|suspended|revoked|banned); the wire status
-- adds `expired`, derived from `expires_at` when read.
CREATE TABLE licenses (
    tenant_id  uuid        NOT NULL,
    id         uuid        NOT NULL,
    key_hash   bytea       NOT NULL,
    product_id uuid        NOT NULL,
    policy_id  uuid        NOT NULL,
    status     text        NOT NULL,
    expires_at timestamptz,
    user_email text,
    created_at timestamptz NOT NULL,
    deleted    boolean     NOT NULL DEFAULT false,
    doc        jsonb       NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX licenses_key_hash ON licenses (tenant_id, key_hash);
CREATE INDEX licenses_list ON licenses (tenant_id, created_at, id) WHERE NOT deleted;
CREATE INDEX licenses_product ON licenses (tenant_id, product_id) WHERE NOT deleted;
CREATE INDEX licenses_policy ON licenses (tenant_id, policy_id) WHERE NOT deleted;
CREATE INDEX licenses_user_email ON licenses (tenant_id, user_email) WHERE NOT deleted;

-- Every machine a license has had; `active` ones hold seats and appear in reads.
CREATE TABLE machines (
    tenant_id   uuid        NOT NULL,
    id          uuid        NOT NULL,
    license_id  uuid        NOT NULL,
    fingerprint text        NOT NULL,
    active      boolean     NOT NULL,
    created_at  timestamptz NOT NULL,
    doc         jsonb       NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX machines_license ON machines (tenant_id, license_id, created_at, id) WHERE active;
CREATE INDEX machines_list ON machines (tenant_id, created_at, id) WHERE active;

-- Idempotency-Key (API.md §1): scoped to the credential that sent it. A row is
-- inserted before the request runs (the primary key makes a concurrent duplicate wait
-- or fail instead of running twice) and completed with the response it produced.
CREATE TABLE idempotency_keys (
    tenant_id     uuid        NOT NULL,
    credential_id text        NOT NULL,
    key           text        NOT NULL,
    request_hash  bytea       NOT NULL,
    status        integer,
    body          bytea,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, credential_id, key)
);
CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['products', 'policies', 'entitlements', 'licenses', 'machines',
                             'idempotency_keys'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I USING (tenant_id = current_tenant())'
            ' WITH CHECK (tenant_id = current_tenant())', t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE ON %I TO licentric_app', t);
    END LOOP;
END
$$;
GRANT DELETE ON idempotency_keys, machines TO licentric_app;

-- Revoking an API key or deleting a license removes its lookup row in the same
-- transaction; DELETE ... WHERE needs SELECT. Row-level security on credential_lookup
-- (enabled in 0002) limits the app role to its own tenant's rows, so this grant shows
-- nothing of other tenants; cross-tenant resolution still goes only through
-- resolve_credential().
GRANT SELECT ON credential_lookup TO licentric_app;
