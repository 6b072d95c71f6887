"""Machines live inside the license stream: their records, views and seat rules."""

from __future__ import annotations

from collections.abc import Collection
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Any
from typing import NamedTuple
from typing import NotRequired
from typing import TypedDict
from uuid import UUID

from ledger.domain.checks import Issues
from ledger.domain.checks import check_choice
from ledger.domain.checks import check_metadata
from ledger.domain.checks import check_optional_int
from ledger.domain.checks import check_optional_text
from ledger.domain.checks import check_text
from ledger.domain.codes import FingerprintUniqueness
from ledger.domain.codes import HeartbeatStatus
from ledger.domain.codes import Platform
from ledger.domain.errors import FloatingLimitExceeded
from ledger.domain.errors import MachineLimitExceeded
from ledger.domain.timestamps import from_iso
from ledger.domain.timestamps import from_iso_or_none

TRANSFER_NOT_ALLOWED = "MACHINE_TRANSFER_NOT_ALLOWED"


class MachineRecord(TypedDict):
    """A machine's state inside the License aggregate (JSON-native, snapshot-friendly)."""

    id: str
    fingerprint: str
    name: str | None
    platform: str | None
    hostname: str | None
    cores: int | None
    metadata: dict[str, Any]
    ip_address: str | None
    heartbeat_status: str
    last_heartbeat_at: str | None
    created_at: str
    updated_at: str
    deactivated_at: str | None
    # Where the fingerprint must be unique beyond its license (see `fingerprint_scope`);
    # absent from records made before it existed.
    fingerprint_scope: NotRequired[str | None]


@dataclass(frozen=True)
class Machine:
    """Read-only view of a machine, with typed values."""

    id: UUID
    license_id: UUID
    fingerprint: str
    name: str | None
    platform: Platform | None
    hostname: str | None
    cores: int | None
    metadata: dict[str, Any]
    ip_address: str | None
    heartbeat_status: HeartbeatStatus
    last_heartbeat_at: datetime | None
    created_at: datetime
    updated_at: datetime
    deactivated_at: datetime | None
    fingerprint_scope: str | None = None

    @property
    def active(self) -> bool:
        return self.deactivated_at is None

    def heartbeat_deadline(self, interval_minutes: int) -> datetime:
        """Last heartbeat (or activation) + the policy's interval."""
        since = self.last_heartbeat_at or self.created_at
        return since + timedelta(minutes=interval_minutes)

    @classmethod
    def of(cls, license_id: UUID, record: MachineRecord) -> Machine:
        return cls(
            id=UUID(record["id"]),
            license_id=license_id,
            fingerprint=record["fingerprint"],
            name=record["name"],
            platform=None if record["platform"] is None else Platform(record["platform"]),
            hostname=record["hostname"],
            cores=record["cores"],
            metadata=dict(record["metadata"]),
            ip_address=record["ip_address"],
            heartbeat_status=HeartbeatStatus(record["heartbeat_status"]),
            last_heartbeat_at=from_iso_or_none(record["last_heartbeat_at"]),
            created_at=from_iso(record["created_at"]),
            updated_at=from_iso(record["updated_at"]),
            deactivated_at=from_iso_or_none(record["deactivated_at"]),
            fingerprint_scope=record.get("fingerprint_scope"),
        )


def fingerprint_scope(uniqueness: FingerprintUniqueness, policy_id: str) -> str | None:
    """The scope in which an active machine's fingerprint must be unique, as a key.

    PER_POLICY: among the active machines of every license of the policy
    (`policy:<id>`); PER_ACCOUNT: of the whole environment (`account`); PER_LICENSE:
    None, since one license's machines are already unique (they share its stream).
    """
    if uniqueness == FingerprintUniqueness.PER_POLICY:
        return f"policy:{policy_id}"
    if uniqueness == FingerprintUniqueness.PER_ACCOUNT:
        return "account"
    return None


class Activation(NamedTuple):
    machine: Machine
    created: bool  # False: the fingerprint was already active (idempotent retry)


def check_machine_fields(fields: dict[str, Any]) -> None:
    issues = Issues()
    if "fingerprint" in fields:
        check_text(issues, "fingerprint", fields["fingerprint"], min_len=8, max_len=256)
    if "name" in fields:
        check_optional_text(issues, "name", fields["name"], max_len=255)
    if fields.get("platform") is not None:
        check_choice(issues, "platform", fields["platform"], [str(p) for p in Platform])
    if "hostname" in fields:
        check_optional_text(issues, "hostname", fields["hostname"], max_len=255)
    if "cores" in fields:
        check_optional_int(issues, "cores", fields["cores"], minimum=1, maximum=65536)
    if "ip_address" in fields:
        check_optional_text(issues, "ipAddress", fields["ip_address"], max_len=64)
    if "metadata" in fields:
        check_metadata(issues, fields["metadata"])
    issues.raise_if_any()


def check_seat(
    active: Iterable[MachineRecord],
    fingerprints_used: Collection[str],
    fingerprint: str,
    *,
    max_machines: int | None,
    floating: bool,
    allow_transfer: bool,
) -> None:
    """Refuse an activation that would take a seat the license does not have.

    - Seats: active machines count, except DEAD ones on a floating policy.
    - `allow_transfer=False`: the license may ever use at most `max_machines` distinct
      fingerprints. Once it has, a seat freed by a deactivation can only be re-taken by a
      fingerprint the license has used before; a never-seen one is refused with
      MACHINE_LIMIT_EXCEEDED (`details.reason = MACHINE_TRANSFER_NOT_ALLOWED`).
    """
    if max_machines is None:
        return
    current = sum(
        1 for m in active if not (floating and m["heartbeat_status"] == HeartbeatStatus.DEAD)
    )
    if current >= max_machines:
        if floating:
            raise FloatingLimitExceeded(max_machines, current)
        raise MachineLimitExceeded(max_machines, current)
    if (
        not allow_transfer
        and fingerprint not in fingerprints_used
        and len(fingerprints_used) >= max_machines
    ):
        raise MachineLimitExceeded(max_machines, current, reason=TRANSFER_NOT_ALLOWED)
