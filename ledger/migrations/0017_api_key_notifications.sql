-- 0017_api_key_notifications.sql
-- What: (1) statement triggers on `api_keys` sending `K|<tenant>|<api key id>,…` on the
--       `licentric_facts` channel, like the `credential_lookup` rows of API keys
--       already do (migration 0012); (2) an index on offline_checkouts
--       (tenant_id, license_id, expires_at).
-- Why:  (1) API processes keep resolved API keys in memory (api/facts_cache.py,
--       "Credentials"): `api_key_principal` (0015) reads the key's scopes and expiry
--       from `api_keys`, so a change there must drop the cached key too, whoever makes
--       it (a revocation also deletes the lookup row, which already sends K).
--       (2) `record_checkout` (0016) deletes the license's expired checkouts on every
--       checkout. With (tenant, license, issued_at, id) and (tenant, expires_at) to
--       choose from, a plan made on stale statistics read every outstanding row of the
--       license to find none, so a checkout's cost grew with the license's outstanding
--       files (a fleet refreshing daily files on a 30-day ttl keeps 30 per machine).
--       With this index the delete reads only what it deletes, whatever the statistics.
-- Compatibility: additive.

DO $$
DECLARE
    ev text;
BEGIN
    FOREACH ev IN ARRAY ARRAY['insert', 'update', 'delete'] LOOP
        EXECUTE format(
            'CREATE TRIGGER %I AFTER %s ON api_keys REFERENCING %s TABLE AS changed '
            'FOR EACH STATEMENT EXECUTE FUNCTION notify_facts_changed(%L, %L)',
            'facts_k_' || ev || '_row', upper(ev),
            CASE WHEN ev = 'delete' THEN 'OLD' ELSE 'NEW' END, 'K', 'id');
    END LOOP;
END
$$;
CREATE TRIGGER facts_truncate AFTER TRUNCATE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION notify_facts_truncated();

CREATE INDEX offline_checkouts_license_expiry
    ON offline_checkouts (tenant_id, license_id, expires_at);
