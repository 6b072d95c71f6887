"""Resolving a credential (API key or license key) to its tenant, by keyed hash.

The first query runs with no tenant set: only the SECURITY DEFINER function
`resolve_credential` (migration 0002) reads across tenants, one hash at a time. Once the
tenant is known the transaction sets it, and the rest is read under row-level security.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import DictRow

from ledger.store.tenancy import set_transaction_tenant


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


def _resolve(curs: Cursor[DictRow], key_hash: bytes, kind: str) -> tuple[UUID, UUID] | None:
    row = curs.execute(
        "SELECT tenant_id, ref_id FROM resolve_credential(%s, %s)", (key_hash, kind), prepare=True
    ).fetchone()
    if row is None:
        return None
    set_transaction_tenant(curs, row["tenant_id"])
    return row["tenant_id"], row["ref_id"]


def resolve_api_key(curs: Cursor[DictRow], key_hash: bytes) -> ApiKeyCredential | None:
    """A live (not revoked) API key, or None. Expiry is the caller's check (it has a clock)."""
    found = _resolve(curs, key_hash, "api_key")
    if found is None:
        return None
    tenant_id, key_id = found
    row = curs.execute(
        "SELECT k.scopes, k.expires_at, t.environment FROM api_keys k"
        " JOIN tenants t ON t.tenant_id = k.tenant_id"
        " WHERE k.id = %s AND k.revoked_at IS NULL",
        (key_id,),
        prepare=True,
    ).fetchone()
    if row is None:
        return None
    return ApiKeyCredential(
        tenant_id, key_id, row["environment"], tuple(row["scopes"]), row["expires_at"]
    )


def resolve_license_key(curs: Cursor[DictRow], key_hash: bytes) -> LicenseCredential | None:
    found = _resolve(curs, key_hash, "license")
    if found is None:
        return None
    tenant_id, license_id = found
    row = curs.execute(
        "SELECT environment FROM tenants WHERE tenant_id = %s", (tenant_id,), prepare=True
    ).fetchone()
    if row is None:
        return None
    return LicenseCredential(tenant_id, license_id, row["environment"])
