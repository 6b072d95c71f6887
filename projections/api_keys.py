"""API keys: the tenant's key list (written and read here) and the global hash -> tenant
lookup row."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import DictRow

from ledger.domain.api_key import ApiKey
from projections.queries import Page
from projections.queries import UnknownCursorError
from projections.wire import iso_ms

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


# Reads. The table holds no secret (no key, no hash): documents are built from columns.
_SELECT = "SELECT id, name, scopes, prefix, created_at, expires_at FROM api_keys"


def _document(row: DictRow) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "name": row["name"],
        "scopes": list(row["scopes"]),
        "prefix": row["prefix"],
        "createdAt": iso_ms(row["created_at"]),
        "expiresAt": iso_ms(row["expires_at"]),
    }


def get_api_key(curs: Cursor[DictRow], api_key_id: UUID) -> dict[str, Any] | None:
    """A key of the tenant that is not revoked (expired ones are still listed), else None."""
    row = curs.execute(_SELECT + " WHERE id = %s AND revoked_at IS NULL", (api_key_id,)).fetchone()
    return None if row is None else _document(row)


def list_api_keys(curs: Cursor[DictRow], *, cursor: UUID | None, limit: int) -> Page:
    """The tenant's unrevoked keys in (createdAt, id) order.

    The cursor may name a key revoked since the previous page: paging goes on after it.
    """
    params: list[Any] = []
    after = ""
    if cursor is not None:
        if curs.execute("SELECT 1 FROM api_keys WHERE id = %s", (cursor,)).fetchone() is None:
            raise UnknownCursorError(str(cursor))
        after = " AND (created_at, id) > (SELECT created_at, id FROM api_keys WHERE id = %s)"
        params.append(cursor)
    rows = curs.execute(
        _SELECT + " WHERE revoked_at IS NULL" + after + " ORDER BY created_at, id LIMIT %s",
        [*params, limit + 1],
    ).fetchall()
    return Page([_document(r) for r in rows[:limit]], has_more=len(rows) > limit)
