"""What a license file says: its header and payload, from the license as it is now.

The file's `expiresAt` is the earliest moment the server can already tell the file
should stop being trusted, because the official SDK's `verify_offline` looks at nothing
else (signature, version, header `expiresAt`):

- the checkout's end (issue time + ttl);
- the license's `expiresAt`, when its policy refuses expired licenses
  (RESTRICT_ACCESS, REVOKE);
- the time of rendering, when the license may not be used at all (suspended, revoked,
  banned) or its bound machine is no longer active: such a file is born expired, and a
  client that refreshes its file learns the news even through the SDK alone.

So after a renewal the re-signed file's expiry moves forward (up to the checkout's end),
and after a suspension it moves to the suspension.

The payload carries no PII (no user e-mail or name, no IP address) and nothing that
changes on every use (usesCount, heartbeats), so a busy license does not churn files.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from typing import Protocol
from uuid import UUID

import orjson

from ledger.domain.codes import LicenseStatus
from ledger.domain.license_checkouts import Checkout
from ledger.domain.machine import Machine
from ledger.domain.timestamps import iso_ms
from ledger.domain.timestamps import require_utc
from ledger.offline.certificate import ALGORITHM
from ledger.offline.certificate import VERSION
from ledger.offline.rules import OfflinePolicy

_UNUSABLE = frozenset({LicenseStatus.SUSPENDED, LicenseStatus.REVOKED, LicenseStatus.BANNED})


def truncate_ms(moment: datetime) -> datetime:
    """Files state times in milliseconds; so do the values compared with them."""
    moment = require_utc(moment)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


class LicenseContent(Protocol):
    """What a file says of its license: the aggregate has it, and so does a license read
    from its read-model rows (projections/checkout_facts.py), which renders the same file
    (a test compares them)."""

    @property
    def id(self) -> UUID: ...
    @property
    def name(self) -> str | None: ...
    @property
    def product_id(self) -> str: ...
    @property
    def policy_id(self) -> str: ...
    @property
    def expires_at(self) -> datetime | None: ...
    @property
    def max_machines_override(self) -> int | None: ...
    @property
    def max_uses_override(self) -> int | None: ...
    @property
    def suspended_at(self) -> datetime | None: ...
    @property
    def revoked_at(self) -> datetime | None: ...
    @property
    def banned_at(self) -> datetime | None: ...
    @property
    def metadata(self) -> dict[str, Any]: ...
    @property
    def created_at(self) -> datetime: ...

    def status_at(self, now: datetime) -> LicenseStatus: ...

    def effective_entitlements(self, policy_codes: Sequence[str]) -> list[str]: ...

    def machine_by_fingerprint(self, fingerprint: str) -> Machine | None: ...


@dataclass(frozen=True)
class FileContent:
    header: dict[str, Any]
    payload: dict[str, Any]
    issued_at: datetime
    expires_at: datetime
    digest: str  # what the file says apart from when it was issued


def bound_machine(license_: LicenseContent, checkout: Checkout) -> Machine | None:
    if checkout.fingerprint is None:
        return None
    return license_.machine_by_fingerprint(checkout.fingerprint)


def file_expiry(
    license_: LicenseContent,
    policy: OfflinePolicy,
    checkout: Checkout,
    machine: Machine | None,
    at: datetime,
) -> datetime:
    ends = [checkout.expires_at]
    if license_.expires_at is not None and policy.expired_blocks:
        ends.append(license_.expires_at)
    machine_gone = checkout.fingerprint is not None and machine is None
    if license_.status_at(at) in _UNUSABLE or machine_gone:
        ends.append(at)
    return truncate_ms(min(ends))


def render_file(
    license_: LicenseContent, policy: OfflinePolicy, checkout: Checkout, *, kid: str, at: datetime
) -> FileContent:
    """Header and payload of `checkout`'s file, signed with `kid`, issued `at`."""
    at = truncate_ms(at)
    machine = bound_machine(license_, checkout)
    expires_at = file_expiry(license_, policy, checkout, machine, at)
    header: dict[str, Any] = {
        "version": VERSION,
        "algorithm": ALGORITHM,
        "kid": kid,
        "issuedAt": iso_ms(at),
        "expiresAt": iso_ms(expires_at),
        "licenseId": str(license_.id),
        "fingerprint": checkout.fingerprint,
    }
    if checkout.encrypted:
        header["encrypted"] = True
    payload: dict[str, Any] = {
        "license": _license(license_, at),
        "policy": _policy(license_, policy),
        "entitlements": license_.effective_entitlements(policy.entitlements),
        "machine": None if machine is None else _machine(machine),
        "issuedAt": iso_ms(at),
        "expiresAt": iso_ms(expires_at),
    }
    return FileContent(header, payload, at, expires_at, content_digest(header, payload))


def content_digest(header: dict[str, Any], payload: dict[str, Any]) -> str:
    """SHA-256 of header and payload without `issuedAt`: equal digests, same file."""
    undated = {
        "header": {k: v for k, v in header.items() if k != "issuedAt"},
        "payload": {k: v for k, v in payload.items() if k != "issuedAt"},
    }
    return hashlib.sha256(orjson.dumps(undated, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _license(license_: LicenseContent, at: datetime) -> dict[str, Any]:
    return {
        "id": str(license_.id),
        "name": license_.name,
        "status": str(license_.status_at(at)),
        "productId": license_.product_id,
        "policyId": license_.policy_id,
        "expiresAt": iso_ms(license_.expires_at),
        "maxMachinesOverride": license_.max_machines_override,
        "maxUsesOverride": license_.max_uses_override,
        "suspendedAt": iso_ms(license_.suspended_at),
        "revokedAt": iso_ms(license_.revoked_at),
        "bannedAt": iso_ms(license_.banned_at),
        "metadata": license_.metadata,
        "createdAt": iso_ms(license_.created_at),
    }


def _policy(license_: LicenseContent, policy: OfflinePolicy) -> dict[str, Any]:
    """The rules an offline client applies: effective limits and the offline rules."""
    return {
        "id": policy.id,
        "name": policy.name,
        "maxMachines": policy.max_machines_for(license_.max_machines_override),
        "maxUses": policy.max_uses_for(license_.max_uses_override),
        "floating": policy.floating,
        "expirationStrategy": policy.expiration_strategy,
        "requireHeartbeat": policy.require_heartbeat,
        "heartbeatIntervalMinutes": policy.heartbeat_interval_minutes,
        "requireFingerprint": policy.require_fingerprint,
        "offlineAllowed": policy.offline_allowed,
        "offlineMaxDays": policy.offline_max_days,
        "isTrial": policy.is_trial,
    }


def _machine(machine: Machine) -> dict[str, Any]:
    return {
        "id": str(machine.id),
        "fingerprint": machine.fingerprint,
        "name": machine.name,
        "platform": None if machine.platform is None else str(machine.platform),
        "hostname": machine.hostname,
        "cores": machine.cores,
    }
