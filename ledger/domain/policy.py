"""Policy: the rules licenses of a product follow (seats, expiry, heartbeats, offline)."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from datetime import datetime
from datetime import timedelta
from typing import Any
from typing import ClassVar
from uuid import UUID

from eventsourcing.domain import event

from ledger.domain.base import UNSET
from ledger.domain.base import LedgerAggregate
from ledger.domain.base import Unset
from ledger.domain.checks import Issues
from ledger.domain.checks import check_codes
from ledger.domain.checks import check_metadata
from ledger.domain.checks import check_text
from ledger.domain.checks import json_copy
from ledger.domain.checks import unique_codes
from ledger.domain.codes import ExpirationStrategy
from ledger.domain.codes import FingerprintUniqueness
from ledger.domain.codes import HeartbeatCullStrategy
from ledger.domain.templates import PolicySettings
from ledger.domain.templates import check_settings
from ledger.domain.templates import check_template
from ledger.domain.templates import resolve_settings
from ledger.domain.templates import template_settings
from ledger.domain.timestamps import require_utc


def _check(fields: Mapping[str, Any], settings: Mapping[str, Any]) -> None:
    issues = Issues()
    if "name" in fields:
        check_text(issues, "name", fields["name"], min_len=1, max_len=255)
    if "template" in fields:
        check_template(issues, fields["template"])
    if "metadata" in fields:
        check_metadata(issues, fields["metadata"])
    check_settings(issues, settings)
    issues.raise_if_any()


class Policy(LedgerAggregate):
    """Changing a policy changes every license on it from that moment on."""

    stream_type: ClassVar[str] = "policy"

    @event("Created")
    def __init__(
        self,
        *,
        product_id: str,
        name: str,
        template: str | None,
        settings: dict[str, Any],
        metadata: dict[str, Any],
        timestamp: datetime,
    ) -> None:
        self._start(metadata)
        self.product_id = product_id
        self.name = name
        self.template = template
        self.entitlements: list[str] = []
        s = json_copy(settings)
        self.max_machines: int | None = s["max_machines"]
        self.max_uses: int | None = s["max_uses"]
        self.floating: bool = s["floating"]
        self.duration_days: int | None = s["duration_days"]
        self.expiration_strategy: str = s["expiration_strategy"]
        self.require_heartbeat: bool = s["require_heartbeat"]
        self.heartbeat_interval_minutes: int = s["heartbeat_interval_minutes"]
        self.heartbeat_cull_strategy: str = s["heartbeat_cull_strategy"]
        self.require_fingerprint: bool = s["require_fingerprint"]
        self.fingerprint_uniqueness: str = s["fingerprint_uniqueness"]
        self.offline_allowed: bool = s["offline_allowed"]
        self.offline_max_days: int = s["offline_max_days"]
        self.allow_machine_transfer: bool = s["allow_machine_transfer"]
        self.is_trial: bool = s["is_trial"]
        self.trial_duration_days: int | None = s["trial_duration_days"]
        self.overridable: bool = s["overridable"]

    @classmethod
    def create(
        cls,
        *,
        id: UUID,
        product_id: UUID,
        name: str,
        template: str | None = None,
        settings: PolicySettings | None = None,
        metadata: Mapping[str, Any] | None = None,
        at: datetime,
    ) -> Policy:
        """Defaults < template < explicit `settings` (API.md: explicit fields win)."""
        explicit: Mapping[str, Any] = settings or {}
        metadata = {} if metadata is None else metadata
        _check({"name": name, "template": template, "metadata": metadata}, explicit)
        return cls._create(
            cls.Created,
            id=id,
            product_id=str(product_id),
            name=name,
            template=None if template is None else str(template),
            settings=resolve_settings(template, explicit),
            metadata=json_copy(metadata),
            timestamp=require_utc(at),
        )

    def update(
        self,
        *,
        name: str | Unset = UNSET,
        template: str | Unset | None = UNSET,
        settings: PolicySettings | None = None,
        metadata: Mapping[str, Any] | Unset = UNSET,
        at: datetime,
    ) -> bool:
        """PATCH. A given `template` re-applies its values, except fields given alongside.

        Returns False (and records nothing) when no field actually changes.
        """
        self.check_not_deleted()
        explicit: Mapping[str, Any] = settings or {}
        fields = {"name": name, "template": template, "metadata": metadata}
        changes = {key: value for key, value in fields.items() if value is not UNSET}
        _check(changes, explicit)
        if template is not UNSET:
            changes.update(template_settings(template))
        changes.update(explicit)
        return self._record_changes(changes, at)

    # Entitlement codes (existence of the entitlements is checked by the caller).

    def attach_entitlements(self, *, codes: Sequence[str], at: datetime) -> list[str]:
        """Returns the codes newly attached (no event when there are none)."""
        self.check_not_deleted()
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
        self.check_not_deleted()
        _check_codes(codes)
        gone = [c for c in unique_codes(codes) if c in self.entitlements]
        if gone:
            self._detach_entitlements(codes=gone, timestamp=require_utc(at))
        return gone

    @event("EntitlementsDetached")
    def _detach_entitlements(self, codes: list[str], timestamp: datetime) -> None:
        self.entitlements = [c for c in self.entitlements if c not in codes]

    # Queries the license rules need.

    def max_machines_for(self, override: int | None) -> int | None:
        """A license's `maxMachinesOverride` wins when the policy is overridable."""
        return override if self.overridable and override is not None else self.max_machines

    def max_uses_for(self, override: int | None) -> int | None:
        return override if self.overridable and override is not None else self.max_uses

    @property
    def expired_blocks(self) -> bool:
        """Whether an expired license is refused (RESTRICT_ACCESS and REVOKE)."""
        return self.expiration_strategy != ExpirationStrategy.ALLOW_ACCESS

    @property
    def revokes_on_expiry(self) -> bool:
        return self.expiration_strategy == ExpirationStrategy.REVOKE

    @property
    def deactivates_dead(self) -> bool:
        return self.heartbeat_cull_strategy == HeartbeatCullStrategy.DEACTIVATE_DEAD

    @property
    def uniqueness(self) -> FingerprintUniqueness:
        return FingerprintUniqueness(self.fingerprint_uniqueness)

    def default_expiry(self, created_at: datetime) -> datetime | None:
        """New licenses expire `durationDays` after creation (None: never)."""
        if self.duration_days is None:
            return None
        return require_utc(created_at) + timedelta(days=self.duration_days)


def _check_codes(codes: Sequence[str]) -> None:
    issues = Issues()
    check_codes(issues, "codes", list(codes))
    issues.raise_if_any()
