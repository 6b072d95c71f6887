"""The validation read: everything one decision needs, in one statement.

`validation_facts_by_key` (migration 0005) resolves the key hash to its tenant through
the narrow SECURITY DEFINER lookup, sets the tenant for its own transaction and returns
the license, its policy and its active machines (with their latest pings) as one compact
JSON text, decoded here once with orjson into the domain's small frozen facts.
Run it as one autocommit statement (`LedgerApplication.autocommit`): one round trip.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from psycopg import Cursor
from psycopg.rows import DictRow

from ledger.domain.codes import ExpirationStrategy
from ledger.domain.codes import HeartbeatStatus
from ledger.domain.codes import LicenseStatus
from ledger.domain.validation import LicenseFacts
from ledger.domain.validation import MachineFacts
from ledger.domain.validation import PolicyFacts

_BY_KEY = "SELECT tenant_id, response_secret, facts FROM validation_facts_by_key(%s)"
_BY_ID = "SELECT tenant_id, response_secret, facts FROM validation_facts(%s, %s)"


@dataclass(frozen=True)
class ValidationFacts:
    tenant_id: UUID
    encrypted_response_secret: str | None
    license: LicenseFacts
    policy_id: UUID | None  # None only before migration 0012 (the cache then keeps none)
    policy: PolicyFacts
    machines: tuple[MachineFacts, ...]
    activated: bool  # a `valid: true` was recorded before (`license.activated`)


def read_by_key(curs: Cursor[DictRow], key_hash: bytes) -> ValidationFacts | None:
    """The facts of the live license with this key hash, in any tenant; else None."""
    return _facts(curs.execute(_BY_KEY, (key_hash,), prepare=True).fetchone())


def read_by_id(curs: Cursor[DictRow], tenant_id: UUID, license_id: UUID) -> ValidationFacts | None:
    """The facts of a live license of `tenant_id`; None when absent or deleted."""
    return _facts(curs.execute(_BY_ID, (tenant_id, license_id), prepare=True).fetchone())


def _facts(row: DictRow | None) -> ValidationFacts | None:
    if row is None:
        return None
    facts = orjson.loads(row["facts"])
    lic, pol = facts["license"], facts["policy"]
    return ValidationFacts(
        tenant_id=row["tenant_id"],
        encrypted_response_secret=row["response_secret"],
        license=LicenseFacts(
            id=UUID(lic["id"]),
            status=LicenseStatus(lic["status"]),
            name=lic["name"],
            expires_at=_time(lic["expiresAt"]),
            uses_count=lic["usesCount"],
            max_machines_override=lic["maxMachinesOverride"],
            max_uses_override=lic["maxUsesOverride"],
            entitlements=tuple(lic["entitlements"]),
        ),
        policy=PolicyFacts(
            max_machines=pol["maxMachines"],
            max_uses=pol["maxUses"],
            floating=pol["floating"],
            expiration_strategy=ExpirationStrategy(pol["expirationStrategy"]),
            require_heartbeat=pol["requireHeartbeat"],
            heartbeat_interval_minutes=pol["heartbeatIntervalMinutes"],
            require_fingerprint=pol["requireFingerprint"],
            overridable=pol["overridable"],
            entitlements=tuple(pol["entitlements"]),
        ),
        policy_id=UUID(lic["policyId"]) if lic.get("policyId") else None,
        machines=tuple(_machine(m) for m in facts["machines"]),
        activated=lic["activated"],
    )


def _machine(doc: dict[str, Any]) -> MachineFacts:
    return MachineFacts(
        id=UUID(doc["id"]),
        fingerprint=doc["fingerprint"],
        name=doc["name"],
        heartbeat_status=HeartbeatStatus(doc["heartbeatStatus"]),
        created_at=_required_time(doc["createdAt"]),
        last_heartbeat_at=_time(doc["lastSeenAt"]),
    )


def _time(text: str | None) -> datetime | None:
    """ISO text with `Z`/offset (documents) or without (UTC timestamps from SQL)."""
    if text is None:
        return None
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _required_time(text: str) -> datetime:
    moment = _time(text)
    assert moment is not None
    return moment
