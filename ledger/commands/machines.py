"""Commands on machines, which live in their license's stream (API.md §4 Machines).

Every command loads the license and its policy in the same attempt of
`LedgerApplication.execute`, so a retry after a stream conflict decides again on fresh
state: N parallel activations on a license with K free seats append exactly K
`MachineActivated` events, because they all append to one stream.

Fingerprint uniqueness beyond one license (PER_POLICY, PER_ACCOUNT) spans streams, so
it is checked against the machines read model (`FingerprintRegistry`, given by the
caller) and enforced by the read model's unique index on (tenant, scope, fingerprint)
of active machines (migration 0007): of two racing activations, the second rolls back.

The timer's commands (`record_machine_death`, `record_license_expiry`) are idempotent:
they record nothing when there is nothing left to record, so several workers may
handle the same due item.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Protocol
from uuid import UUID

from ledger.application import LedgerApplication
from ledger.commands.base import CommandContext
from ledger.commands.base import load
from ledger.commands.base import load_reference
from ledger.commands.base import save
from ledger.domain.base import UNSET
from ledger.domain.base import Unset
from ledger.domain.codes import FingerprintUniqueness
from ledger.domain.errors import FingerprintTaken
from ledger.domain.errors import FloatingLimitExceeded
from ledger.domain.errors import MachineLimitExceeded
from ledger.domain.license import License
from ledger.domain.machine import Activation
from ledger.domain.machine import Machine
from ledger.domain.machine import fingerprint_scope
from ledger.domain.policy import Policy
from ledger.store.recorder import DuplicateKeyError

# Migration 0007: one active machine per (tenant, fingerprint scope, fingerprint).
FINGERPRINT_SCOPE_INDEX = "machines_fingerprint_scope_key"


class FingerprintRegistry(Protocol):
    """Which fingerprints other licenses' active machines hold (a read model)."""

    def in_use_elsewhere(
        self, fingerprint: str, *, license_id: UUID, policy_id: UUID | None
    ) -> bool:
        """An active machine of another license has it: a license of `policy_id`, or of
        any license of the environment when `policy_id` is None."""
        ...


@dataclass(frozen=True)
class MachineDetails:
    """What an activation request says about the machine."""

    fingerprint: str
    name: str | None = None
    platform: str | None = None
    hostname: str | None = None
    cores: int | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    ip_address: str | None = None


def policy_of(app: LedgerApplication, license_: License) -> Policy:
    """The license's policy, even if deleted since (a license keeps its policy's rules)."""
    policy: object = app.repository.get(UUID(license_.policy_id))
    assert isinstance(policy, Policy)
    return policy


def _taken(fingerprint: str) -> FingerprintTaken:
    return FingerprintTaken(
        "This fingerprint is already activated on another license",
        {"fingerprint": fingerprint},
    )


def _check_unique(
    registry: FingerprintRegistry, license_: License, policy: Policy, fingerprint: str
) -> None:
    uniqueness = policy.uniqueness
    if uniqueness == FingerprintUniqueness.PER_LICENSE:
        return
    scope = policy.id if uniqueness == FingerprintUniqueness.PER_POLICY else None
    if registry.in_use_elsewhere(fingerprint, license_id=license_.id, policy_id=scope):
        raise _taken(fingerprint)


def _save_activation(
    app: LedgerApplication, ctx: CommandContext, license_: License, fingerprint: str
) -> None:
    try:
        app.save_in(ctx.tenant_id, license_, metadata=ctx.metadata())
    except DuplicateKeyError as e:
        if e.constraint != FINGERPRINT_SCOPE_INDEX:
            raise
        # Another license activated the fingerprint between our check and our commit.
        raise _taken(fingerprint) from None


def activate_machine(
    app: LedgerApplication,
    ctx: CommandContext,
    *,
    license_id: UUID,
    machine_id: UUID,
    details: MachineDetails,
    fingerprints: FingerprintRegistry,
) -> Activation:
    """Activate, or return the machine already active with this fingerprint.

    Order of refusals: the license's state (409 LICENSE_*), the fingerprint taken
    elsewhere (422 FINGERPRINT_TAKEN), no seat (422 MACHINE_LIMIT_EXCEEDED /
    FLOATING_LIMIT_EXCEEDED, which also records `license.limit_reached`).
    """
    fingerprint = details.fingerprint

    def attempt() -> Activation:
        license_ = load_reference(app, License, license_id, "licenseId")
        policy = policy_of(app, license_)
        license_.check_usable(ctx.at, expired_blocks=policy.expired_blocks)
        existing = license_.machine_by_fingerprint(fingerprint)
        if existing is not None:
            return Activation(existing, created=False)  # the SDK's retry, or a re-install
        _check_unique(fingerprints, license_, policy, fingerprint)
        try:
            activation = license_.activate_machine(
                machine_id=machine_id,
                fingerprint=fingerprint,
                name=details.name,
                platform=details.platform,
                hostname=details.hostname,
                cores=details.cores,
                metadata=dict(details.metadata),
                ip_address=details.ip_address,
                max_machines=policy.max_machines_for(license_.max_machines_override),
                floating=policy.floating,
                allow_transfer=policy.allow_machine_transfer,
                expired_blocks=policy.expired_blocks,
                fingerprint_scope=fingerprint_scope(policy.uniqueness, str(policy.id)),
                at=ctx.at,
            )
        except (MachineLimitExceeded, FloatingLimitExceeded) as refusal:
            # The refusal writes nothing; the fact that the limit was hit is an event of
            # its own. A stream conflict here retries the whole activation, which may
            # then find a seat freed meanwhile.
            license_.record_limit_reached(refusal, fingerprint=fingerprint, at=ctx.at)
            save(app, ctx, license_)
            raise
        _save_activation(app, ctx, license_, fingerprint)
        return activation

    return app.execute(ctx.tenant_id, attempt, stream=license_id)


def _on_license(
    app: LedgerApplication,
    ctx: CommandContext,
    license_id: UUID,
    decide: Callable[[License, Policy], bool],
) -> tuple[License, bool]:
    """Load the license and its policy, run `decide` (True: it recorded something), save
    only then. Returns the license and what `decide` said."""

    def attempt() -> tuple[License, bool]:
        license_ = load(app, License, license_id)
        recorded = decide(license_, policy_of(app, license_))
        if recorded:
            save(app, ctx, license_)
        return license_, recorded

    return app.execute(ctx.tenant_id, attempt, stream=license_id)


def deactivate_machine(
    app: LedgerApplication, ctx: CommandContext, *, license_id: UUID, machine_id: UUID
) -> None:
    """Free the machine's seat (allowed whatever the license's status)."""

    def decide(license_: License, _: Policy) -> bool:
        license_.deactivate_machine(machine_id=machine_id, at=ctx.at)
        return True

    _on_license(app, ctx, license_id, decide)


def update_machine(
    app: LedgerApplication,
    ctx: CommandContext,
    *,
    license_id: UUID,
    machine_id: UUID,
    name: str | Unset | None = UNSET,
    metadata: dict[str, Any] | Unset = UNSET,
) -> Machine:
    """PATCH name/metadata (no event when nothing changes)."""
    license_, _ = _on_license(
        app,
        ctx,
        license_id,
        lambda lic, _: lic.update_machine(
            machine_id=machine_id, name=name, metadata=metadata, at=ctx.at
        ),
    )
    return license_.machine(machine_id)


def record_heartbeat(
    app: LedgerApplication,
    ctx: CommandContext,
    *,
    license_id: UUID,
    machine_id: UUID,
    overdue: Callable[[], bool],
) -> bool:
    """The heartbeat state changes a ping makes: the first one starts the machine's
    heartbeat, one on a DEAD machine revives it (each an event, whose projection moves
    the last-seen row). A ping after the deadline finds the machine dead even if the
    timer has not recorded it yet: the death is recorded first (and, under
    DEACTIVATE_DEAD, the machine is gone: NotFound). False when nothing was recorded
    (an ALIVE machine: the caller only touches its last-seen row, no event)."""

    def decide(license_: License, policy: Policy) -> bool:
        died = False
        if policy.require_heartbeat and overdue():
            died = license_.machine_died(
                machine_id=machine_id, at=ctx.at, deactivate=policy.deactivates_dead
            )
        if any(m.id == machine_id for m in license_.active_machines):
            started_or_revived = license_.record_heartbeat(machine_id=machine_id, at=ctx.at)
            return died or started_or_revived is not None
        return died

    license_, recorded = _on_license(app, ctx, license_id, decide)
    license_.machine(machine_id)  # NotFound: absent, or its death just deactivated it
    return recorded


def record_machine_death(
    app: LedgerApplication,
    ctx: CommandContext,
    *,
    license_id: UUID,
    machine_id: UUID,
    overdue: Callable[[], bool],
) -> bool:
    """The timer: a machine missed its heartbeat deadline -> DEAD (`machine.dead`), and
    deactivated (its seat freed) under DEACTIVATE_DEAD.

    `overdue` re-reads the deadline inside the attempt: a ping may have moved it since
    the timer found the machine. Returns False when nothing was recorded.
    """

    def decide(license_: License, policy: Policy) -> bool:
        if not policy.require_heartbeat or not overdue():
            return False
        return license_.machine_died(
            machine_id=machine_id, at=ctx.at, deactivate=policy.deactivates_dead
        )

    return _on_license(app, ctx, license_id, decide)[1]


def record_license_expiry(app: LedgerApplication, ctx: CommandContext, *, license_id: UUID) -> bool:
    """The timer: `expiresAt` passed -> `license.expired` once per expiry date, and
    revoked under the REVOKE strategy. Returns False when nothing was recorded."""
    return _on_license(
        app,
        ctx,
        license_id,
        lambda lic, pol: lic.record_expired(at=ctx.at, revoke=pol.revokes_on_expiry),
    )[1]
