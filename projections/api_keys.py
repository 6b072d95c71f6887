"""API keys: the tenant's key list and the global hash -> tenant lookup row."""

from __future__ import annotations

from uuid import UUID

from psycopg import Cursor
from psycopg.rows import DictRow

from ledger.domain.api_key import ApiKey

_UPSERT = """
INSERT INTO api_keys (tenant_id, id, name, scopes, prefix, created_at, expires_at, revoked_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (tenant_id, id) DO UPDATE SET name = EXCLUDED.name, scopes = EXCLUDED.scopes,
    expires_at = EXCLUDED.expires_at, revoked_at = EXCLUDED.revoked_at
"""


def project_api_key(curs: Cursor[DictRow], tenant_id: UUID, key: ApiKey) -> None:
    curs.execute(
        _UPSERT,
        (
            tenant_id,
            key.id,
            key.name,
            key.scopes,
            key.prefix,
            key.created_on,
            key.expires_at,
            key.revoked_at,
        ),
        prepare=True,
    )
    key_hash = bytes.fromhex(key.key_hash)
    if key.revoked or key.deleted:
        # Revocation takes effect at once: the next request with the key finds nothing.
        curs.execute("DELETE FROM credential_lookup WHERE key_hash = %s", (key_hash,))
        return
    curs.execute(
        "INSERT INTO credential_lookup (key_hash, tenant_id, kind, ref_id)"
        " VALUES (%s, %s, 'api_key', %s) ON CONFLICT DO NOTHING",
        (key_hash, tenant_id, key.id),
        prepare=True,
    )
