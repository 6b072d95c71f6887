"""Usage counting, first activation and own entitlements of the License aggregate."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from eventsourcing.domain import event

from ledger.domain.checks import Issues
from ledger.domain.checks import check_codes
from ledger.domain.checks import check_int
from ledger.domain.checks import unique_codes
from ledger.domain.errors import UsageLimitExceeded
from ledger.domain.license_checkouts import LicenseCheckouts
from ledger.domain.timestamps import require_utc


class LicenseUsage(LicenseCheckouts):
    def _start_usage(self, entitlements: Sequence[str]) -> None:
        self.uses_count = 0
        self.activated_at: datetime | None = None
        self.entitlements = list(entitlements)

    def check_transition(self, action: str, at: datetime) -> None:
        """Refuse actions on deleted or terminal licenses (implemented by License)."""
        raise NotImplementedError

    # Uses

    def increment_usage(self, *, increment: int, max_uses: int | None, at: datetime) -> int:
        """Metered use (`POST /usage`); refused past the effective `max_uses`, exactly."""
        self.check_transition("increment usage of", at)
        issues = Issues()
        check_int(issues, "increment", increment, minimum=1)
        issues.raise_if_any()
        if max_uses is not None and self.uses_count + increment > max_uses:
            raise UsageLimitExceeded(max_uses, self.uses_count)
        self._usage_incremented(increment=increment, timestamp=require_utc(at))
        return self.uses_count

    @event("UsageIncremented")
    def _usage_incremented(self, increment: int, timestamp: datetime) -> None:
        self.uses_count += increment

    def record_validation_use(self, *, max_uses: int | None, at: datetime) -> int:
        """A `valid: true` validation counts one use; never more than `max_uses`."""
        self.check_transition("use", at)
        if max_uses is not None and self.uses_count >= max_uses:
            raise UsageLimitExceeded(max_uses, self.uses_count)
        self._use_recorded(timestamp=require_utc(at))
        return self.uses_count

    @event("ValidationUseRecorded")
    def _use_recorded(self, timestamp: datetime) -> None:
        self.uses_count += 1

    def reset_usage(self, *, at: datetime) -> None:
        self.check_transition("reset usage of", at)
        self._usage_reset(previous=self.uses_count, timestamp=require_utc(at))

    @event("UsageReset")
    def _usage_reset(self, previous: int, timestamp: datetime) -> None:
        self.uses_count = 0

    def mark_activated(self, *, at: datetime) -> bool:
        """The first ever successful validation (`license.activated`); once only."""
        self.check_not_deleted()
        if self.activated_at is not None:
            return False
        self._activated(timestamp=require_utc(at))
        return True

    @event("Activated")
    def _activated(self, timestamp: datetime) -> None:
        self.activated_at = timestamp

    # Own entitlement codes (existence is checked by the caller)

    def effective_entitlements(self, policy_codes: Sequence[str]) -> list[str]:
        """The union of the policy's codes and the license's own, policy's first."""
        return unique_codes([*policy_codes, *self.entitlements])

    def attach_entitlements(self, *, codes: Sequence[str], at: datetime) -> list[str]:
        """Returns the codes newly attached (no event when there are none)."""
        self.check_transition("change entitlements of", at)
        _check_codes(codes)
        new = [c for c in unique_codes(codes) if c not in self.entitlements]
        if new:
            self._attach_entitlements(codes=new, timestamp=require_utc(at))
        return new

    @event("EntitlementsAttached")
    def _attach_entitlements(self, codes: list[str], timestamp: datetime) -> None:
        self.entitlements.extend(codes)

    def detach_entitlements(self, *, codes: Sequence[str], at: datetime) -> list[str]:
        """Returns the codes actually detached (no event when there are none)."""
        self.check_transition("change entitlements of", at)
        _check_codes(codes)
        gone = [c for c in unique_codes(codes) if c in self.entitlements]
        if gone:
            self._detach_entitlements(codes=gone, timestamp=require_utc(at))
        return gone

    @event("EntitlementsDetached")
    def _detach_entitlements(self, codes: list[str], timestamp: datetime) -> None:
        self.entitlements = [c for c in self.entitlements if c not in codes]


def _check_codes(codes: Sequence[str]) -> None:
    issues = Issues()
    check_codes(issues, "codes", list(codes))
    issues.raise_if_any()
