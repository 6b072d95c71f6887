-- 0010_machine_fingerprints.sql
-- What: each machine row carries the scope its fingerprint must be unique in
--       (`policy:<id>` for PER_POLICY, `account` for PER_ACCOUNT, NULL for PER_LICENSE),
--       recorded in its MachineActivated event; a partial unique index enforces it among
--       active machines; an index finds a fingerprint's active machines.
-- Why:  the command checks `fingerprintUniqueness` against this table before it
--       activates, but two activations of one fingerprint on two licenses append to two
--       different streams, so optimistic concurrency cannot order them. The unique index
--       does: the second transaction (events included) rolls back and the command
--       answers 422 FINGERPRINT_TAKEN. Seats within one license need no index: its
--       machines share the license stream.
--       tenant_id leads the key: uniqueness never crosses tenants, and a clash reveals
--       nothing about another tenant's fingerprints.
-- Compatibility: additive; rows projected before it have no scope (NULL: not indexed).

ALTER TABLE machines ADD COLUMN fingerprint_scope text;
CREATE UNIQUE INDEX machines_fingerprint_scope_key
    ON machines (tenant_id, fingerprint_scope, fingerprint)
    WHERE active AND fingerprint_scope IS NOT NULL;
CREATE INDEX machines_fingerprint ON machines (tenant_id, fingerprint) WHERE active;
