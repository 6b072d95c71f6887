"""License: the lifecycle of the license stream (see license_usage, license_checkouts,
license_machines).

Stored status is one of active, suspended, revoked, banned, plus `expires_at`; the wire
status adds `expired`, derived from time by `status_at(now)`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import datetime
from datetime import timedelta
from typing import Any
from typing import ClassVar
from uuid import UUID

from eventsourcing.domain import event

from ledger.domain.base import UNSET
from ledger.domain.base import Unset
from ledger.domain.checks import Issues
from ledger.domain.checks import check_codes
from ledger.domain.checks import check_metadata
from ledger.domain.checks import check_optional_int
from ledger.domain.checks import check_optional_text
from ledger.domain.checks import json_copy
from ledger.domain.checks import unique_codes
from ledger.domain.codes import LicenseStatus
from ledger.domain.errors import BusinessRuleViolation
from ledger.domain.errors import InvalidTransition
from ledger.domain.errors import ValidationFailed
from ledger.domain.license_usage import LicenseUsage
from ledger.domain.timestamps import from_iso_or_none
from ledger.domain.timestamps import require_utc
from ledger.domain.timestamps import to_iso
from ledger.domain.timestamps import to_iso_or_none

KEY_HASH = re.compile(r"[0-9a-f]{64}")
TERMINAL = frozenset({LicenseStatus.REVOKED, LicenseStatus.BANNED})
# Which wire statuses each transition may start from (API.md §4 Licenses).
ALLOWED_FROM: dict[str, frozenset[LicenseStatus]] = {
    "suspend": frozenset({LicenseStatus.ACTIVE}),
    "reinstate": frozenset({LicenseStatus.SUSPENDED}),
    "revoke": frozenset({LicenseStatus.ACTIVE, LicenseStatus.SUSPENDED, LicenseStatus.EXPIRED}),
    "ban": frozenset({LicenseStatus.ACTIVE, LicenseStatus.SUSPENDED, LicenseStatus.EXPIRED}),
}


def _check_fields(fields: Mapping[str, Any]) -> None:
    issues = Issues()
    for key, field, limit in (("name", "name", 255), ("user_email", "userEmail", 320),
                              ("user_name", "userName", 255)):  # fmt: skip
        if key in fields:
            check_optional_text(issues, field, fields[key], max_len=limit)
    for key, field in (("max_machines_override", "maxMachinesOverride"),
                       ("max_uses_override", "maxUsesOverride")):  # fmt: skip
        if key in fields:
            check_optional_int(issues, field, fields[key], minimum=1)
    if "entitlements" in fields:
        check_codes(issues, "entitlements", fields["entitlements"])
    if "metadata" in fields:
        check_metadata(issues, fields["metadata"])
    issues.raise_if_any()


class License(LicenseUsage):
    stream_type: ClassVar[str] = "license"
    _ATTRIBUTES: ClassVar[dict[str, str]] = {"expires_at": "_expires_at"}

    @event("Created")
    def __init__(
        self,
        *,
        product_id: str,
        policy_id: str,
        key_hash: str,
        name: str | None,
        expires_at: str | None,
        max_machines_override: int | None,
        max_uses_override: int | None,
        user_email: str | None,
        user_name: str | None,
        entitlements: list[str],
        metadata: dict[str, Any],
        timestamp: datetime,
    ) -> None:
        self._start(metadata)
        self._start_machines()
        self._start_checkouts()
        self.product_id = product_id
        self.policy_id = policy_id
        self.key_hash = key_hash
        self.name = name
        self._expires_at = expires_at
        self.max_machines_override = max_machines_override
        self.max_uses_override = max_uses_override
        self.user_email = user_email
        self.user_name = user_name
        self._start_usage(entitlements)
        self._status = LicenseStatus.ACTIVE.value
        self.suspended_at: datetime | None = None
        self.revoked_at: datetime | None = None
        self.banned_at: datetime | None = None
        self._expiry_recorded_for: str | None = None

    @classmethod
    def create(
        cls,
        *,
        id: UUID,
        product_id: UUID,
        policy_id: UUID,
        key_hash: str,
        name: str | None = None,
        expires_at: datetime | None = None,
        max_machines_override: int | None = None,
        max_uses_override: int | None = None,
        user_email: str | None = None,
        user_name: str | None = None,
        entitlements: Sequence[str] = (),
        metadata: Mapping[str, Any] | None = None,
        at: datetime,
    ) -> License:
        """`expires_at` is already resolved by the caller (default: policy.default_expiry)."""
        metadata = {} if metadata is None else metadata
        fields = {
            "name": name,
            "max_machines_override": max_machines_override,
            "max_uses_override": max_uses_override,
            "user_email": user_email,
            "user_name": user_name,
            "entitlements": list(entitlements),
            "metadata": metadata,
        }
        _check_fields(fields)
        if not isinstance(key_hash, str) or not KEY_HASH.fullmatch(key_hash):
            raise ValidationFailed.single(["keyHash"], "must be 64 lowercase hex characters")
        fields.update(entitlements=unique_codes(entitlements), metadata=json_copy(metadata))
        return cls._create(
            cls.Created,
            id=id,
            product_id=str(product_id),
            policy_id=str(policy_id),
            key_hash=key_hash,
            expires_at=to_iso_or_none(expires_at),
            timestamp=require_utc(at),
            **fields,
        )

    # Status

    @property
    def expires_at(self) -> datetime | None:
        return from_iso_or_none(self._expires_at)

    @property
    def stored_status(self) -> LicenseStatus:
        return LicenseStatus(self._status)

    def status_at(self, now: datetime) -> LicenseStatus:
        """The wire status at `now`.

        revoked/banned are final; `suspended` wins over `expired` (a suspension is an
        explicit act, and validation checks SUSPENDED before EXPIRED, API.md §5.2), so a
        suspended license past its expiry shows `suspended` and becomes `expired` when
        reinstated. An active license whose `expires_at <= now` is `expired`.
        """
        return status_at(LicenseStatus(self._status), self.expires_at, now)

    def is_terminal(self) -> bool:
        return self._status in TERMINAL

    def check_transition(self, action: str, at: datetime) -> None:
        self.check_not_deleted()
        status = self.status_at(at)
        allowed = ALLOWED_FROM.get(action)
        if status in TERMINAL or (allowed is not None and status not in allowed):
            raise InvalidTransition(action, status)

    def suspend(self, *, at: datetime) -> None:
        self.check_transition("suspend", at)
        self._suspend(timestamp=require_utc(at))

    def reinstate(self, *, at: datetime) -> None:
        self.check_transition("reinstate", at)
        self._reinstate(timestamp=require_utc(at))

    def revoke(self, *, at: datetime) -> None:
        self.check_transition("revoke", at)
        self._revoke(timestamp=require_utc(at))

    def ban(self, *, at: datetime) -> None:
        self.check_transition("ban", at)
        self._ban(timestamp=require_utc(at))

    @event("Suspended")
    def _suspend(self, timestamp: datetime) -> None:
        self._status = LicenseStatus.SUSPENDED.value
        self.suspended_at = timestamp

    @event("Reinstated")
    def _reinstate(self, timestamp: datetime) -> None:
        self._status = LicenseStatus.ACTIVE.value
        self.suspended_at = None

    @event("Revoked")
    def _revoke(self, timestamp: datetime) -> None:
        self._status = LicenseStatus.REVOKED.value
        self.revoked_at = timestamp

    @event("Banned")
    def _ban(self, timestamp: datetime) -> None:
        self._status = LicenseStatus.BANNED.value
        self.banned_at = timestamp

    def renew(
        self, *, expires_at: datetime | None = None, duration_days: int | None = None, at: datetime
    ) -> datetime:
        """Set a new expiry: `expires_at`, else `durationDays` from max(now, expiresAt).

        Allowed from any non-terminal status (a suspended license stays suspended).
        """
        self.check_transition("renew", at)
        at = require_utc(at)
        if expires_at is None:
            if duration_days is None:
                msg = "renew needs expiresAt or a policy with durationDays"
                raise BusinessRuleViolation(msg, "RENEWAL_DURATION_UNAVAILABLE")
            current = self.expires_at
            start = at if current is None else max(at, current)
            expires_at = start + timedelta(days=duration_days)
        elif require_utc(expires_at) <= at:
            raise ValidationFailed.single(["expiresAt"], "must be in the future")
        self._renew(
            expires_at=to_iso(expires_at),
            previous_expires_at=self._expires_at,
            timestamp=at,
        )
        return require_utc(expires_at)

    @event("Renewed")
    def _renew(self, expires_at: str, previous_expires_at: str | None, timestamp: datetime) -> None:
        self._expires_at = expires_at

    def record_expired(self, *, at: datetime, revoke: bool = False) -> bool:
        """The timer saw `expires_at` pass: record `Expired` once per expiry date.

        With `revoke` (policy strategy REVOKE) the license is revoked too. Returns False
        when there is nothing to record (not due, terminal, or already recorded).
        """
        self.check_not_deleted()
        at = require_utc(at)
        expires_at = self.expires_at
        if self.is_terminal() or expires_at is None or expires_at > at:
            return False
        changed = False
        if self._expiry_recorded_for != self._expires_at:
            self._expired(expires_at=self._expires_at, timestamp=at)
            changed = True
        if revoke:
            self._revoke(timestamp=at)
            changed = True
        return changed

    @event("Expired")
    def _expired(self, expires_at: str | None, timestamp: datetime) -> None:
        self._expiry_recorded_for = expires_at

    @property
    def expiry_due_at(self) -> datetime | None:
        """When the timer has `Expired` to record (None: nothing pending).

        The current `expires_at` of a live, non-terminal license whose expiry has not
        been recorded yet; a renewal makes the new date due.
        """
        if self.deleted or self.is_terminal() or self._expiry_recorded_for == self._expires_at:
            return None
        return self.expires_at

    def update(
        self,
        *,
        name: str | Unset | None = UNSET,
        expires_at: datetime | Unset | None = UNSET,
        max_machines_override: int | Unset | None = UNSET,
        max_uses_override: int | Unset | None = UNSET,
        user_email: str | Unset | None = UNSET,
        user_name: str | Unset | None = UNSET,
        metadata: Mapping[str, Any] | Unset = UNSET,
        policy_id: UUID | Unset = UNSET,
        at: datetime,
    ) -> bool:
        """PATCH. A new `expires_at` in the future takes an expired license back to active.

        The caller checks that a new `policy_id` belongs to the same product. Refused on
        revoked/banned licenses (terminal). Returns False (no event) when nothing changes.
        """
        self.check_transition("update", at)
        given: dict[str, Any] = {
            "name": name,
            "max_machines_override": max_machines_override,
            "max_uses_override": max_uses_override,
            "user_email": user_email,
            "user_name": user_name,
            "metadata": metadata,
        }
        changes = {key: value for key, value in given.items() if value is not UNSET}
        _check_fields(changes)
        if not isinstance(expires_at, Unset):
            changes["expires_at"] = to_iso_or_none(expires_at)
        if not isinstance(policy_id, Unset):
            changes["policy_id"] = str(policy_id)
        return self._record_changes(changes, at)


def status_at(stored: LicenseStatus, expires_at: datetime | None, now: datetime) -> LicenseStatus:
    """The wire status at `now` of a license with this stored status and expiry (see
    `License.status_at`; also read-model licenses, projections/checkout_facts.py)."""
    if stored != LicenseStatus.ACTIVE:
        return stored
    if expires_at is not None and expires_at <= require_utc(now):
        return LicenseStatus.EXPIRED
    return LicenseStatus.ACTIVE
