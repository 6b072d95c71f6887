"""What a `valid: true` validation writes: one use (under `maxUses`) and the first activation.

This is the only part of a validation that is a command, and it runs only when needed:
when the policy has `maxUses` (every valid result counts one use) or when the license
was never activated (the first valid result records `license.activated`). Both go into
one commit. The use is checked against the stream's latest version, with the policy read
fresh in the same attempt: when concurrent validations reach the cap, the losers' retry
sees the cap and gets `UsageLimitExceeded`, so never more than `maxUses` are granted.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from ledger.application import LedgerApplication
from ledger.commands.base import CommandContext
from ledger.commands.base import load
from ledger.commands.base import save
from ledger.domain.license import License
from ledger.domain.policy import Policy


@dataclass(frozen=True)
class RecordedUse:
    uses_count: int
    counted: bool  # a use was counted (the policy has maxUses)
    activated: bool  # this was the first ever valid result


def record_valid_validation(
    app: LedgerApplication, ctx: CommandContext, license_id: UUID
) -> RecordedUse:
    """Raises UsageLimitExceeded when the cap was reached meanwhile (the result is then
    USAGE_LIMIT_EXCEEDED); LicenseStateError or NotFound when the license stopped
    validating since it was read (the caller reads and decides again)."""

    def attempt() -> RecordedUse:
        license_ = load(app, License, license_id)
        # A license keeps its policy's stream even if the policy was deleted later.
        policy: object = app.repository.get(UUID(license_.policy_id))
        assert isinstance(policy, Policy)
        # The decision was made on a read: refuse if the license stopped validating since.
        license_.check_usable(ctx.at, expired_blocks=policy.expired_blocks)
        max_uses = policy.max_uses_for(license_.max_uses_override)
        counted = max_uses is not None
        if counted:
            license_.record_validation_use(max_uses=max_uses, at=ctx.at)
        activated = license_.mark_activated(at=ctx.at)
        if counted or activated:
            save(app, ctx, license_)
        return RecordedUse(license_.uses_count, counted, activated)

    return app.execute(ctx.tenant_id, attempt, stream=license_id)
