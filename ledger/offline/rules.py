"""The part of a policy an offline file depends on, from the aggregate or its document.

A checkout reads it from the policies read model (one query, with the signing key)
rather than replaying the policy's stream; the re-signer builds it from the aggregate.
Both give the same rules, so a file does not depend on where they were read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from ledger.domain.codes import ExpirationStrategy
from ledger.domain.license_checkouts import CheckoutTerms
from ledger.domain.policy import Policy


@dataclass(frozen=True)
class OfflinePolicy:
    id: str
    name: str
    max_machines: int | None
    max_uses: int | None
    overridable: bool
    floating: bool
    expiration_strategy: str
    require_heartbeat: bool
    heartbeat_interval_minutes: int
    require_fingerprint: bool
    offline_allowed: bool
    offline_max_days: int
    is_trial: bool
    entitlements: tuple[str, ...]

    @classmethod
    def of(cls, policy: Policy) -> OfflinePolicy:
        return cls(
            id=str(policy.id),
            name=policy.name,
            max_machines=policy.max_machines,
            max_uses=policy.max_uses,
            overridable=policy.overridable,
            floating=policy.floating,
            expiration_strategy=policy.expiration_strategy,
            require_heartbeat=policy.require_heartbeat,
            heartbeat_interval_minutes=policy.heartbeat_interval_minutes,
            require_fingerprint=policy.require_fingerprint,
            offline_allowed=policy.offline_allowed,
            offline_max_days=policy.offline_max_days,
            is_trial=policy.is_trial,
            entitlements=tuple(policy.entitlements),
        )

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> OfflinePolicy:
        """From the policy's wire document (the policies read model's `doc`)."""
        return cls(
            id=doc["id"],
            name=doc["name"],
            max_machines=doc["maxMachines"],
            max_uses=doc["maxUses"],
            overridable=doc["overridable"],
            floating=doc["floating"],
            expiration_strategy=doc["expirationStrategy"],
            require_heartbeat=doc["requireHeartbeat"],
            heartbeat_interval_minutes=doc["heartbeatIntervalMinutes"],
            require_fingerprint=doc["requireFingerprint"],
            offline_allowed=doc["offlineAllowed"],
            offline_max_days=doc["offlineMaxDays"],
            is_trial=doc["isTrial"],
            entitlements=tuple(doc["entitlements"]),
        )

    @property
    def expired_blocks(self) -> bool:
        """Whether an expired license is refused (RESTRICT_ACCESS and REVOKE)."""
        return self.expiration_strategy != ExpirationStrategy.ALLOW_ACCESS

    def checkout_terms(
        self,
        *,
        checkout_id: UUID,
        fingerprint: str | None,
        ttl: int | None,
        kid: str,
        encrypted: bool,
        at: datetime,
    ) -> CheckoutTerms:
        """A checkout request held to these offline rules (`plan_checkout_of`)."""
        return CheckoutTerms(
            checkout_id=checkout_id,
            fingerprint=fingerprint,
            ttl=ttl,
            kid=kid,
            offline_allowed=self.offline_allowed,
            offline_max_days=self.offline_max_days,
            require_fingerprint=self.require_fingerprint,
            expired_blocks=self.expired_blocks,
            encrypted=encrypted,
            at=at,
        )

    def max_machines_for(self, override: int | None) -> int | None:
        return override if self.overridable and override is not None else self.max_machines

    def max_uses_for(self, override: int | None) -> int | None:
        return override if self.overridable and override is not None else self.max_uses
