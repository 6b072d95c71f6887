"""Offline checkouts of the License aggregate (API.md §7): recorded here, signed outside."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from ledger.domain.errors import BusinessRuleViolation
from ledger.domain.errors import CheckoutTtlInvalid
from ledger.domain.errors import NotFound
from ledger.domain.errors import OfflineNotAllowed
from ledger.domain.errors import ValidationFailed
from ledger.domain.license_machines import LicenseMachines
from ledger.domain.timestamps import from_iso
from ledger.domain.timestamps import require_utc
from ledger.domain.timestamps import to_iso

TTL_MIN = 3600
TTL_MAX = 7_776_000
TTL_DEFAULT = 1_209_600


@dataclass(frozen=True)
class Checkout:
    id: UUID
    fingerprint: str | None
    machine_id: UUID | None
    ttl: int
    kid: str
    issued_at: datetime
    expires_at: datetime


class LicenseCheckouts(LicenseMachines):
    def _start_checkouts(self) -> None:
        self._checkouts: list[dict[str, Any]] = []

    def checkouts(self, now: datetime | None = None) -> list[Checkout]:
        """All checkouts, or only those still unexpired at `now`."""
        views = [
            Checkout(
                id=UUID(c["checkout_id"]),
                fingerprint=c["fingerprint"],
                machine_id=None if c["machine_id"] is None else UUID(c["machine_id"]),
                ttl=c["ttl"],
                kid=c["kid"],
                issued_at=from_iso(c["issued_at"]),
                expires_at=from_iso(c["expires_at"]),
            )
            for c in self._checkouts
        ]
        return views if now is None else [c for c in views if c.expires_at > require_utc(now)]

    # Offline checkouts

    def record_checkout(
        self,
        *,
        checkout_id: UUID,
        fingerprint: str | None,
        ttl: int | None,
        kid: str,
        offline_allowed: bool,
        offline_max_days: int,
        require_fingerprint: bool,
        expired_blocks: bool,
        at: datetime,
    ) -> Checkout:
        """Record an offline license file issued now; the caller renders and signs it.

        Without `ttl`, the default (14 days) capped at `offline_max_days`.
        """
        self.check_not_deleted()
        at = require_utc(at)
        cap = offline_max_days * 86400
        ttl = min(TTL_DEFAULT, cap) if ttl is None else ttl
        if isinstance(ttl, bool) or not TTL_MIN <= ttl <= min(TTL_MAX, cap):
            msg = f"ttl must be between {TTL_MIN} and {min(TTL_MAX, cap)} seconds"
            raise CheckoutTtlInvalid(msg, {"min": TTL_MIN, "max": min(TTL_MAX, cap)})
        if not offline_allowed:
            raise OfflineNotAllowed("the policy does not allow offline use")
        self.check_usable(at, expired_blocks=expired_blocks)
        machine_id = None
        if fingerprint is None:
            if require_fingerprint:
                raise ValidationFailed.single(["fingerprint"], "is required by the policy")
        else:
            record = self._record_by_fingerprint(fingerprint)
            if record is None:
                msg = "fingerprint is not an active machine of this license"
                raise BusinessRuleViolation(msg, "FINGERPRINT_NOT_FOUND")
            machine_id = record["id"]
        self._checked_out(
            checkout_id=str(checkout_id),
            fingerprint=fingerprint,
            machine_id=machine_id,
            ttl=ttl,
            kid=kid,
            expires_at=to_iso(at + timedelta(seconds=ttl)),
            timestamp=at,
        )
        return self.checkouts()[-1]

    @event("CheckedOut")
    def _checked_out(
        self,
        *,
        checkout_id: str,
        fingerprint: str | None,
        machine_id: str | None,
        ttl: int,
        kid: str,
        expires_at: str,
        timestamp: datetime,
    ) -> None:
        self._checkouts.append(
            {
                "checkout_id": checkout_id,
                "fingerprint": fingerprint,
                "machine_id": machine_id,
                "ttl": ttl,
                "kid": kid,
                "issued_at": to_iso(timestamp),
                "expires_at": expires_at,
            }
        )

    def record_file_regenerated(self, *, checkout_id: UUID, kid: str, at: datetime) -> None:
        """The re-signer re-issued a checkout's file (same expiry, maybe a new key)."""
        self.check_not_deleted()
        if not any(c["checkout_id"] == str(checkout_id) for c in self._checkouts):
            msg = f"checkout {checkout_id} not found"
            raise NotFound(msg)
        self._file_regenerated(checkout_id=str(checkout_id), kid=kid, timestamp=require_utc(at))

    @event("FileRegenerated")
    def _file_regenerated(self, checkout_id: str, kid: str, timestamp: datetime) -> None:
        for checkout in self._checkouts:
            if checkout["checkout_id"] == checkout_id:
                checkout["kid"] = kid
