"""License validation: one pure decision whose check order IS API.md §5.2.

The caller reads small facts from the read model (no aggregate loading on the hot path)
and passes the time in. `NOT_FOUND` (row 1) is the caller's: it has no facts to pass
when the key resolves to nothing. Everything else is decided here, in table order; the
first check that applies wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from uuid import UUID

from ledger.domain.codes import ExpirationStrategy
from ledger.domain.codes import HeartbeatStatus
from ledger.domain.codes import LicenseStatus
from ledger.domain.codes import ValidationCode
from ledger.domain.timestamps import require_utc


@dataclass(frozen=True)
class LicenseFacts:
    id: UUID
    status: LicenseStatus  # stored status: active|suspended|revoked|banned
    name: str | None
    expires_at: datetime | None
    uses_count: int
    max_machines_override: int | None
    max_uses_override: int | None
    entitlements: tuple[str, ...]  # the license's own codes


@dataclass(frozen=True)
class PolicyFacts:
    max_machines: int | None
    max_uses: int | None
    floating: bool
    expiration_strategy: ExpirationStrategy
    require_heartbeat: bool
    heartbeat_interval_minutes: int
    require_fingerprint: bool
    overridable: bool
    entitlements: tuple[str, ...]


@dataclass(frozen=True)
class MachineFacts:
    """An active machine; `last_heartbeat_at` is the latest ping seen (event or last-seen row)."""

    id: UUID
    fingerprint: str
    name: str | None
    heartbeat_status: HeartbeatStatus
    created_at: datetime
    last_heartbeat_at: datetime | None

    def heartbeat_deadline(self, interval_minutes: int) -> datetime:
        """Last heartbeat (or activation) + the policy's interval."""
        since = self.last_heartbeat_at or self.created_at
        return since + timedelta(minutes=interval_minutes)


@dataclass(frozen=True)
class Decision:
    valid: bool
    code: ValidationCode
    status: LicenseStatus  # the wire status at `now` (adds `expired`)
    entitlements: tuple[str, ...]  # effective: the policy's codes, then the license's own
    missing: tuple[str, ...] = ()  # requested codes not effective (ENTITLEMENTS_MISSING)
    machine: MachineFacts | None = None  # the active machine the fingerprint matched


def wire_status(license_: LicenseFacts, now: datetime) -> LicenseStatus:
    """Mirror of `License.status_at`: an active license past `expires_at` is `expired`."""
    if license_.status != LicenseStatus.ACTIVE:
        return license_.status
    if license_.expires_at is not None and license_.expires_at <= now:
        return LicenseStatus.EXPIRED
    return LicenseStatus.ACTIVE


def effective_max_machines(license_: LicenseFacts, policy: PolicyFacts) -> int | None:
    """A license's override wins when the policy is overridable (Policy.max_machines_for)."""
    override = license_.max_machines_override
    return override if policy.overridable and override is not None else policy.max_machines


def effective_max_uses(license_: LicenseFacts, policy: PolicyFacts) -> int | None:
    override = license_.max_uses_override
    return override if policy.overridable and override is not None else policy.max_uses


def seats_taken(machines: Sequence[MachineFacts], policy: PolicyFacts) -> int:
    """Active machines hold seats; on a floating policy DEAD ones have given theirs back."""
    return sum(
        1 for m in machines if not (policy.floating and m.heartbeat_status == HeartbeatStatus.DEAD)
    )


def heartbeat_overdue(machine: MachineFacts, policy: PolicyFacts, now: datetime) -> bool:
    if machine.heartbeat_status == HeartbeatStatus.DEAD:
        return True
    return machine.heartbeat_deadline(policy.heartbeat_interval_minutes) <= now


# One return per row of the precedence table: the order of the checks is the rule.
def validate(  # noqa: PLR0911
    license_: LicenseFacts,
    policy: PolicyFacts,
    machines: Sequence[MachineFacts],
    *,
    fingerprint: str | None,
    requested: Sequence[str],
    now: datetime,
) -> Decision:
    """Rows 2-12 of API.md §5.2, in order. `machines` are the license's active ones."""
    now = require_utc(now)
    status = wire_status(license_, now)
    effective = tuple(dict.fromkeys([*policy.entitlements, *license_.entitlements]))
    machine = None
    if fingerprint is not None:
        machine = next((m for m in machines if m.fingerprint == fingerprint), None)

    def result(
        code: ValidationCode, *, valid: bool = False, missing: Sequence[str] = ()
    ) -> Decision:
        return Decision(valid, code, status, effective, tuple(missing), machine)

    # Rows 2-5: the license's own state.
    if status in (LicenseStatus.BANNED, LicenseStatus.REVOKED, LicenseStatus.SUSPENDED):
        return result(_STATE_CODES[status])
    expired = status == LicenseStatus.EXPIRED
    if expired and policy.expiration_strategy != ExpirationStrategy.ALLOW_ACCESS:
        return result(ValidationCode.EXPIRED)
    # Row 6: uses (a valid result counts one more, exactly, in the command that follows).
    max_uses = effective_max_uses(license_, policy)
    if max_uses is not None and license_.uses_count >= max_uses:
        return result(ValidationCode.USAGE_LIMIT_EXCEEDED)
    # Row 7: entitlements.
    missing = [code for code in dict.fromkeys(requested) if code not in effective]
    if missing:
        return result(ValidationCode.ENTITLEMENTS_MISSING, missing=missing)
    # Rows 8-10: the machine.
    if fingerprint is None:
        if policy.require_fingerprint:
            return result(ValidationCode.FINGERPRINT_REQUIRED)
    else:
        seats = effective_max_machines(license_, policy)
        taken = seats_taken(machines, policy)
        if seats is not None and (taken > seats or (machine is None and taken >= seats)):
            return result(ValidationCode.MACHINE_LIMIT_EXCEEDED)
        if machine is None:
            return result(ValidationCode.FINGERPRINT_NOT_FOUND)
        if policy.require_heartbeat and heartbeat_overdue(machine, policy, now):
            return result(ValidationCode.HEARTBEAT_REQUIRED)
    # Rows 11-12.
    if expired:
        return result(ValidationCode.EXPIRED, valid=True)
    return result(ValidationCode.VALID, valid=True)


def decision_holds_until(
    license_: LicenseFacts,
    policy: PolicyFacts,
    decision: Decision,
    now: datetime,
) -> datetime | None:
    """Until when `validate` gives `decision` again for the same facts and request.

    Time enters the decision only through two instants: the license's `expires_at`
    (`wire_status`) and, when heartbeats are required, the matched machine's heartbeat
    deadline. Between `now` and the first of them still ahead, every answer is the same,
    so a caller may reuse it (the facts cache does, api/validator.py). None: no instant
    ahead can change it. A property test holds this against `validate` at later times.
    """
    ahead: list[datetime] = []
    expires_at = license_.expires_at
    if license_.status == LicenseStatus.ACTIVE and expires_at is not None and expires_at > now:
        ahead.append(expires_at)
    machine = decision.machine
    alive = machine is not None and machine.heartbeat_status != HeartbeatStatus.DEAD
    if policy.require_heartbeat and alive:
        assert machine is not None
        deadline = machine.heartbeat_deadline(policy.heartbeat_interval_minutes)
        if deadline > now:
            ahead.append(deadline)
    return min(ahead, default=None)


_STATE_CODES = {
    LicenseStatus.BANNED: ValidationCode.BANNED,
    LicenseStatus.REVOKED: ValidationCode.REVOKED,
    LicenseStatus.SUSPENDED: ValidationCode.SUSPENDED,
}
