-- 0007_webhooks.sql
-- What: webhook endpoints (inline read model), the webhook outbox (per-tenant consumer
--       position, deliveries, attempts) and two narrow cross-tenant listings for the
--       worker.
-- Why:  a tailing consumer turns each tenant's log into deliveries; its position row
--       is written in the same transaction as the delivery rows it creates, so every
--       event becomes its deliveries exactly once, whatever crashes. The dispatcher
--       claims due deliveries per tenant under row-level security; only *which tenants*
--       have work is asked across tenants, through the SECURITY DEFINER functions below.
--       Order per (endpoint, license) is `seq`, allocated from the tenant's outbox head
--       row while it is locked, so seq order is commit order within a tenant.
-- Compatibility: additive; old code ignores these tables.

CREATE TABLE webhook_endpoints (
    tenant_id        uuid        NOT NULL,
    id               uuid        NOT NULL,
    url              text        NOT NULL,
    events           text[]      NOT NULL,
    enabled          boolean     NOT NULL,
    deleted          boolean     NOT NULL DEFAULT false,
    -- AES-GCM under the master key, context "<tenant>:webhook-secret:<id>"; never in doc.
    encrypted_secret text        NOT NULL,
    created_at       timestamptz NOT NULL,
    doc              jsonb       NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX webhook_endpoints_list ON webhook_endpoints (tenant_id, created_at, id)
    WHERE NOT deleted;

-- The consumer's position in the tenant's log, and the next delivery `seq`. Locked
-- (FOR UPDATE) by whoever creates deliveries for the tenant: the consumer, and the API
-- for test/redeliver/recover, so seq values are handed out in commit order.
CREATE TABLE webhook_outbox_heads (
    tenant_id  uuid        NOT NULL,
    consumer   text        NOT NULL,
    position   bigint      NOT NULL DEFAULT 0,
    next_seq   bigint      NOT NULL DEFAULT 1,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, consumer)
);

-- One row per (message, endpoint) to send. `body` is the envelope rendered once: the
-- same bytes on every attempt. `order_key` is the license (or the resource) whose
-- deliveries to one endpoint go strictly one after the other, in `seq` order.
CREATE TABLE webhook_deliveries (
    tenant_id       uuid        NOT NULL,
    id              uuid        NOT NULL,
    endpoint_id     uuid        NOT NULL,
    seq             bigint      NOT NULL,
    order_key       uuid        NOT NULL,
    message_id      text        NOT NULL,
    event_type      text        NOT NULL,
    -- The log position of the event (also the envelope's `sequence`); NULL for tests.
    event_position  bigint,
    event_at        timestamptz NOT NULL,
    license_id      uuid,
    body            bytea       NOT NULL,
    state           text        NOT NULL
        CHECK (state IN ('pending', 'in_flight', 'delivered', 'failed', 'skipped', 'superseded')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    lease_until     timestamptz,
    claim_token     uuid,
    last_status     integer,
    last_error      text,
    delivered_at    timestamptz,
    redelivery_of   uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, seq)
);
-- Head-of-line check: is an earlier delivery of this (endpoint, order key) still open?
CREATE INDEX webhook_deliveries_open ON webhook_deliveries (tenant_id, endpoint_id, order_key, seq)
    WHERE state IN ('pending', 'in_flight');
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_leased ON webhook_deliveries (lease_until)
    WHERE state = 'in_flight';
CREATE INDEX webhook_deliveries_list ON webhook_deliveries (tenant_id, endpoint_id, seq);

-- Every attempt, including ones a crash interrupted (finished_at stays NULL).
CREATE TABLE webhook_attempts (
    tenant_id   uuid        NOT NULL,
    delivery_id uuid        NOT NULL,
    number      integer     NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    http_status integer,
    latency_ms  integer,
    response    text,
    error       text,
    PRIMARY KEY (tenant_id, delivery_id, number)
);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['webhook_endpoints', 'webhook_outbox_heads', 'webhook_deliveries',
                             'webhook_attempts'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I USING (tenant_id = current_tenant())'
            ' WITH CHECK (tenant_id = current_tenant())', t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE ON %I TO licentric_app', t);
    END LOOP;
END
$$;

-- FORCE ROW LEVEL SECURITY applies to the owner too, so the SECURITY DEFINER listings
-- below (which run as the owner) would see nothing. These read-only policies apply to
-- the owner role alone (the role running this migration), which owns these tables and
-- could read them anyway; the app role is not covered by them and stays confined to
-- its tenant.
CREATE POLICY owner_scan ON log_heads FOR SELECT TO CURRENT_USER USING (true);
CREATE POLICY owner_scan ON webhook_endpoints FOR SELECT TO CURRENT_USER USING (true);
CREATE POLICY owner_scan ON webhook_outbox_heads FOR SELECT TO CURRENT_USER USING (true);
CREATE POLICY owner_scan ON webhook_deliveries FOR SELECT TO CURRENT_USER USING (true);

-- Tenants whose log has events `p_consumer` has not yet turned into deliveries, among
-- those with a webhook endpoint. Returns tenant ids only, nothing of their rows.
CREATE FUNCTION webhook_tenants_behind(p_consumer text, p_limit integer)
RETURNS TABLE (tenant_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
    SELECT h.tenant_id FROM public.log_heads h
    WHERE EXISTS (SELECT 1 FROM public.webhook_endpoints w
                  WHERE w.tenant_id = h.tenant_id AND NOT w.deleted)
      AND h.position > COALESCE((SELECT o.position FROM public.webhook_outbox_heads o
                                 WHERE o.tenant_id = h.tenant_id AND o.consumer = p_consumer), 0)
    LIMIT p_limit
$$;
REVOKE ALL ON FUNCTION webhook_tenants_behind(text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION webhook_tenants_behind(text, integer) TO licentric_app;

-- Tenants with a delivery the dispatcher may claim now: the head (smallest open seq) of
-- an (endpoint, order key) queue, due or with its lease run out, its endpoint enabled.
-- Heads come from one ordered pass over the open rows (DISTINCT ON along the partial
-- index), which does not depend on statistics the way a per-row anti-join does.
-- Oldest due first, so one busy tenant cannot starve the others. Tenant ids only.
CREATE FUNCTION webhook_due_tenants(p_limit integer)
RETURNS TABLE (tenant_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
    SELECT h.tenant_id FROM (
        SELECT DISTINCT ON (d.tenant_id, d.endpoint_id, d.order_key)
            d.tenant_id, d.endpoint_id, d.state, d.next_attempt_at, d.lease_until
        FROM public.webhook_deliveries d
        WHERE d.state IN ('pending', 'in_flight')
        ORDER BY d.tenant_id, d.endpoint_id, d.order_key, d.seq
    ) h
    JOIN public.webhook_endpoints w
      ON w.tenant_id = h.tenant_id AND w.id = h.endpoint_id AND w.enabled AND NOT w.deleted
    WHERE (h.state = 'pending' AND h.next_attempt_at <= now())
       OR (h.state = 'in_flight' AND h.lease_until < now())
    GROUP BY h.tenant_id
    ORDER BY min(COALESCE(h.next_attempt_at, h.lease_until))
    LIMIT p_limit
$$;
REVOKE ALL ON FUNCTION webhook_due_tenants(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION webhook_due_tenants(integer) TO licentric_app;
