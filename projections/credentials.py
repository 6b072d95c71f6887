"""Resolving a credential (API key or license key) to its tenant, by keyed hash.

Only the SECURITY DEFINER function `resolve_credential` (migration 0002) reads across
tenants, one hash at a time. The functions of migration 0015 call it, set the tenant it
names, and read the rest under row-level security: one statement per credential.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import DictRow


@dataclass(frozen=True)
class ApiKeyCredential:
    tenant_id: UUID
    api_key_id: UUID
    environment: str
    scopes: tuple[str, ...]
    expires_at: datetime | None


@dataclass(frozen=True)
class LicenseCredential:
    tenant_id: UUID
    license_id: UUID
    environment: str


def resolve_api_key(curs: Cursor[DictRow], key_hash: bytes) -> ApiKeyCredential | None:
    """A live (not revoked) API key, or None. Expiry is the caller's check (it has a clock).

    One statement (`api_key_principal`, migration 0015): run it on an autocommit
    connection for one round trip; in a transaction the tenant stays set after it."""
    row = curs.execute(
        "SELECT tenant_id, api_key_id, environment, scopes, expires_at FROM api_key_principal(%s)",
        (key_hash,),
        prepare=True,
    ).fetchone()
    if row is None:
        return None
    return ApiKeyCredential(
        row["tenant_id"], row["api_key_id"], row["environment"], tuple(row["scopes"]),
        row["expires_at"],
    )  # fmt: skip


def resolve_license_key(curs: Cursor[DictRow], key_hash: bytes) -> LicenseCredential | None:
    """The live license with this key, or None; one statement (`license_principal`)."""
    row = curs.execute(
        "SELECT tenant_id, license_id, environment FROM license_principal(%s)",
        (key_hash,),
        prepare=True,
    ).fetchone()
    if row is None:
        return None
    return LicenseCredential(row["tenant_id"], row["license_id"], row["environment"])
