"""The machine and checkout half of the License aggregate (same stream: "license").

`License` subclasses `LicenseMachines`; this class holds the commands and events about
machines (activation, deactivation, heartbeat state changes) and offline checkouts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from ledger.domain.base import UNSET
from ledger.domain.base import LedgerAggregate
from ledger.domain.base import Unset
from ledger.domain.checks import json_copy
from ledger.domain.codes import HeartbeatStatus
from ledger.domain.codes import LicenseStatus
from ledger.domain.errors import FloatingLimitExceeded
from ledger.domain.errors import InvalidTransition
from ledger.domain.errors import LicenseStateError
from ledger.domain.errors import MachineLimitExceeded
from ledger.domain.errors import NotFound
from ledger.domain.machine import Activation
from ledger.domain.machine import Machine
from ledger.domain.machine import MachineRecord
from ledger.domain.machine import check_machine_fields
from ledger.domain.machine import check_seat
from ledger.domain.timestamps import require_utc
from ledger.domain.timestamps import to_iso

DEACTIVATED_BY_REQUEST = "requested"
DEACTIVATED_AS_DEAD = "heartbeat_dead"


class LicenseMachines(LedgerAggregate):
    def _start_machines(self) -> None:
        self._machines: dict[str, MachineRecord] = {}
        self._fingerprints_used: list[str] = []

    def status_at(self, now: datetime) -> LicenseStatus:
        raise NotImplementedError

    def check_usable(self, at: datetime, *, expired_blocks: bool) -> None:
        """Refuse use of a license that could not validate (409 LICENSE_<STATUS>)."""
        check_usable(self.status_at(at), expired_blocks=expired_blocks)

    # Queries

    @property
    def machines(self) -> list[Machine]:
        """Every machine the license has had, active or not, in activation order."""
        return [Machine.of(self.id, m) for m in self._machines.values()]

    @property
    def active_machines(self) -> list[Machine]:
        # Filter the records first: a long-lived license has had many more machines.
        return [
            Machine.of(self.id, m) for m in self._machines.values() if m["deactivated_at"] is None
        ]

    @property
    def machine_count(self) -> int:
        return sum(1 for m in self._machines.values() if m["deactivated_at"] is None)

    @property
    def fingerprints_used(self) -> list[str]:
        return list(self._fingerprints_used)

    def machine(self, machine_id: UUID) -> Machine:
        """An active machine of this license, else NotFound."""
        return Machine.of(self.id, self._active_record(machine_id))

    def machine_by_fingerprint(self, fingerprint: str) -> Machine | None:
        record = self._record_by_fingerprint(fingerprint)
        return None if record is None else Machine.of(self.id, record)

    def _record_by_fingerprint(self, fingerprint: str) -> MachineRecord | None:
        return next(
            (
                m
                for m in self._machines.values()
                if m["fingerprint"] == fingerprint and m["deactivated_at"] is None
            ),
            None,
        )

    def _active_record(self, machine_id: UUID) -> MachineRecord:
        record = self._machines.get(str(machine_id))
        if record is None or record["deactivated_at"] is not None:
            msg = f"machine {machine_id} not found"
            raise NotFound(msg)
        return record

    # Activation

    def activate_machine(
        self,
        *,
        machine_id: UUID,
        fingerprint: str,
        name: str | None = None,
        platform: str | None = None,
        hostname: str | None = None,
        cores: int | None = None,
        metadata: dict[str, Any] | None = None,
        ip_address: str | None = None,
        max_machines: int | None,
        floating: bool = False,
        allow_transfer: bool = False,
        expired_blocks: bool = True,
        fingerprint_scope: str | None = None,
        at: datetime,
    ) -> Activation:
        """Activate a machine; the same fingerprint already active is returned as is.

        `max_machines` is the effective limit (policy or override), `expired_blocks` is
        whether the policy's expiration strategy refuses expired licenses. Uniqueness of
        the fingerprint beyond this license (PER_POLICY/PER_ACCOUNT) is the caller's check;
        `fingerprint_scope` (see `machine.fingerprint_scope`) is recorded with the machine
        so the read model can enforce that uniqueness with an index.
        """
        self.check_not_deleted()
        metadata = {} if metadata is None else metadata
        fields: dict[str, Any] = {
            "fingerprint": fingerprint,
            "name": name,
            "platform": platform,
            "hostname": hostname,
            "cores": cores,
            "ip_address": ip_address,
            "metadata": metadata,
        }
        check_machine_fields(fields)
        at = require_utc(at)
        self.check_usable(at, expired_blocks=expired_blocks)
        existing = self._record_by_fingerprint(fingerprint)
        if existing is not None:
            return Activation(Machine.of(self.id, existing), created=False)
        active = [m for m in self._machines.values() if m["deactivated_at"] is None]
        check_seat(
            active,
            self._fingerprints_used,
            fingerprint,
            max_machines=max_machines,
            floating=floating,
            allow_transfer=allow_transfer,
        )
        self._activate_machine(
            machine_id=str(machine_id),
            fingerprint=fingerprint,
            name=name,
            platform=platform,
            hostname=hostname,
            cores=cores,
            metadata=json_copy(metadata),
            ip_address=ip_address,
            fingerprint_scope=fingerprint_scope,
            timestamp=at,
        )
        return Activation(self.machine(machine_id), created=True)

    @event("MachineActivated")
    def _activate_machine(
        self,
        *,
        machine_id: str,
        fingerprint: str,
        name: str | None,
        platform: str | None,
        hostname: str | None,
        cores: int | None,
        metadata: dict[str, Any],
        ip_address: str | None,
        timestamp: datetime,
        # Absent from events recorded before it existed: those machines had no scope.
        fingerprint_scope: str | None = None,
    ) -> None:
        self._machines[machine_id] = MachineRecord(
            id=machine_id,
            fingerprint=fingerprint,
            name=name,
            platform=platform,
            hostname=hostname,
            cores=cores,
            metadata=json_copy(metadata),
            ip_address=ip_address,
            heartbeat_status=HeartbeatStatus.NOT_STARTED.value,
            last_heartbeat_at=None,
            created_at=to_iso(timestamp),
            updated_at=to_iso(timestamp),
            deactivated_at=None,
            fingerprint_scope=fingerprint_scope,
        )
        if fingerprint not in self._fingerprints_used:
            self._fingerprints_used.append(fingerprint)

    def record_limit_reached(self, refusal: MachineLimitExceeded | FloatingLimitExceeded, *,
                             fingerprint: str, at: datetime) -> None:  # fmt: skip
        """Record that an activation was refused for want of a seat (`license.limit_reached`).

        The refused activation itself changes nothing; this fact is for webhooks and audit.
        """
        self.check_not_deleted()
        self._limit_reached(
            code=str(refusal.code),
            maximum=refusal.details["max"],
            current=refusal.details["current"],
            fingerprint=fingerprint,
            timestamp=require_utc(at),
        )

    @event("LimitReached")
    def _limit_reached(
        self, code: str, maximum: int, current: int, fingerprint: str, timestamp: datetime
    ) -> None:
        """Nothing changes: the event is the record."""

    def deactivate_machine(self, *, machine_id: UUID, at: datetime) -> None:
        """Free the machine's seat. Allowed whatever the license status (it only frees)."""
        self.check_not_deleted()
        self._active_record(machine_id)
        self._deactivate_machine(
            machine_id=str(machine_id), reason=DEACTIVATED_BY_REQUEST, timestamp=require_utc(at)
        )

    @event("MachineDeactivated")
    def _deactivate_machine(self, machine_id: str, reason: str, timestamp: datetime) -> None:
        record = self._machines[machine_id]
        record["deactivated_at"] = record["updated_at"] = to_iso(timestamp)

    def update_machine(
        self,
        *,
        machine_id: UUID,
        name: str | Unset | None = UNSET,
        metadata: dict[str, Any] | Unset = UNSET,
        at: datetime,
    ) -> bool:
        """PATCH name/metadata; returns False (no event) when nothing changes."""
        self.check_not_deleted()
        record = self._active_record(machine_id)
        given = {"name": name, "metadata": metadata}
        changes = {k: v for k, v in given.items() if v is not UNSET}
        check_machine_fields(changes)
        changes = {k: v for k, v in changes.items() if record[k] != v}  # type: ignore[literal-required]
        if not changes:
            return False
        self._update_machine(
            machine_id=str(machine_id), changes=json_copy(changes), timestamp=require_utc(at)
        )
        return True

    @event("MachineUpdated")
    def _update_machine(
        self, machine_id: str, changes: dict[str, Any], timestamp: datetime
    ) -> None:
        record = self._machines[machine_id]
        for key, value in json_copy(changes).items():
            record[key] = value  # type: ignore[literal-required]
        record["updated_at"] = to_iso(timestamp)

    # Heartbeat state changes (pings themselves are not events).

    def record_heartbeat(self, *, machine_id: UUID, at: datetime) -> str | None:
        """A ping: starts (NOT_STARTED) or revives (DEAD) the machine; ALIVE records nothing.

        Returns the name of the event recorded, if any.
        """
        self.check_not_deleted()
        status = self._active_record(machine_id)["heartbeat_status"]
        if status == HeartbeatStatus.NOT_STARTED:
            self.machine_heartbeat_started(machine_id=machine_id, at=at)
            return "MachineHeartbeatStarted"
        if status == HeartbeatStatus.DEAD:
            self.machine_revived(machine_id=machine_id, at=at)
            return "MachineRevived"
        return None

    def _check_heartbeat(self, machine_id: UUID, action: str, *allowed: HeartbeatStatus) -> None:
        self.check_not_deleted()
        status = self._active_record(machine_id)["heartbeat_status"]
        if status not in allowed:
            raise InvalidTransition(action, status)

    def machine_heartbeat_started(self, *, machine_id: UUID, at: datetime) -> None:
        self._check_heartbeat(machine_id, "start heartbeat of", HeartbeatStatus.NOT_STARTED)
        self._heartbeat_started(machine_id=str(machine_id), timestamp=require_utc(at))

    @event("MachineHeartbeatStarted")
    def _heartbeat_started(self, machine_id: str, timestamp: datetime) -> None:
        self._set_heartbeat(machine_id, HeartbeatStatus.ALIVE, timestamp, seen=True)

    def machine_died(self, *, machine_id: UUID, at: datetime, deactivate: bool) -> bool:
        """Deadline passed: → DEAD, then deactivated when the cull strategy says so.

        Idempotent for the timer: returns False when there is nothing left to record.
        """
        self.check_not_deleted()
        record = self._machines.get(str(machine_id))
        if record is None or record["deactivated_at"] is not None:
            return False
        at = require_utc(at)
        changed = False
        if record["heartbeat_status"] != HeartbeatStatus.DEAD:
            self._died(machine_id=str(machine_id), timestamp=at)
            changed = True
        if deactivate:
            self._deactivate_machine(
                machine_id=str(machine_id), reason=DEACTIVATED_AS_DEAD, timestamp=at
            )
            changed = True
        return changed

    @event("MachineDied")
    def _died(self, machine_id: str, timestamp: datetime) -> None:
        self._set_heartbeat(machine_id, HeartbeatStatus.DEAD, timestamp, seen=False)

    def machine_revived(self, *, machine_id: UUID, at: datetime) -> None:
        self._check_heartbeat(machine_id, "revive", HeartbeatStatus.DEAD)
        self._revived(machine_id=str(machine_id), timestamp=require_utc(at))

    @event("MachineRevived")
    def _revived(self, machine_id: str, timestamp: datetime) -> None:
        self._set_heartbeat(machine_id, HeartbeatStatus.ALIVE, timestamp, seen=True)

    def _set_heartbeat(
        self, machine_id: str, status: HeartbeatStatus, at: datetime, *, seen: bool
    ) -> None:
        record = self._machines[machine_id]
        record["heartbeat_status"] = status.value
        record["updated_at"] = to_iso(at)
        if seen:
            record["last_heartbeat_at"] = to_iso(at)


def check_usable(status: LicenseStatus, *, expired_blocks: bool) -> None:
    """Refuse use of a license in `status` that could not validate (409 LICENSE_<STATUS>)."""
    if status == LicenseStatus.EXPIRED and not expired_blocks:
        return
    if status != LicenseStatus.ACTIVE:
        raise LicenseStateError(status)
