"""The Idempotency-Key store (API.md §1): claim a key, complete it, or find it taken.

A key is claimed by inserting its row before the request runs: the primary key
(tenant, credential, key) lets exactly one of two concurrent requests proceed. The row
is completed with the response, or released when the request failed on our side so a
retry can run. Rows older than 24 h no longer count.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta

from psycopg import Cursor
from psycopg.rows import DictRow

RETENTION = timedelta(hours=24)


@dataclass(frozen=True)
class Claimed:
    """The key is ours: run the request."""


@dataclass(frozen=True)
class Taken:
    request_hash: bytes
    status: int | None  # None: the first request is still running
    body: bytes | None


def claim(
    curs: Cursor[DictRow],
    tenant_id: object,
    *,
    credential_id: str,
    key: str,
    request_hash: bytes,
    now: datetime,
) -> Claimed | Taken:
    row = curs.execute(
        "INSERT INTO idempotency_keys (tenant_id, credential_id, key, request_hash, created_at)"
        " VALUES (%s, %s, %s, %s, %s)"
        " ON CONFLICT (tenant_id, credential_id, key) DO UPDATE"
        "   SET request_hash = EXCLUDED.request_hash, status = NULL, body = NULL,"
        "       created_at = EXCLUDED.created_at"
        "   WHERE idempotency_keys.created_at < %s"
        " RETURNING 1",
        (tenant_id, credential_id, key, request_hash, now, now - RETENTION),
    ).fetchone()
    if row is not None:
        return Claimed()
    taken = curs.execute(
        "SELECT request_hash, status, body FROM idempotency_keys"
        " WHERE credential_id = %s AND key = %s",
        (credential_id, key),
    ).fetchone()
    assert taken is not None
    body = None if taken["body"] is None else bytes(taken["body"])
    return Taken(bytes(taken["request_hash"]), taken["status"], body)


def complete(curs: Cursor[DictRow], credential_id: str, key: str, status: int, body: bytes) -> None:
    curs.execute(
        "UPDATE idempotency_keys SET status = %s, body = %s WHERE credential_id = %s AND key = %s",
        (status, body, credential_id, key),
    )


def release(curs: Cursor[DictRow], credential_id: str, key: str) -> None:
    curs.execute(
        "DELETE FROM idempotency_keys WHERE credential_id = %s AND key = %s AND status IS NULL",
        (credential_id, key),
    )
