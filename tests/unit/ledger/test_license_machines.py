"""Machines inside the license stream: activation, seats, heartbeats."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any
from uuid import UUID
from uuid import uuid4

import pytest

from ledger.domain.codes import ErrorCode
from ledger.domain.codes import FingerprintUniqueness
from ledger.domain.codes import HeartbeatStatus
from ledger.domain.errors import FloatingLimitExceeded
from ledger.domain.errors import InvalidTransition
from ledger.domain.errors import LicenseStateError
from ledger.domain.errors import MachineLimitExceeded
from ledger.domain.errors import NotFound
from ledger.domain.errors import ValidationFailed
from ledger.domain.license import License
from ledger.domain.machine import fingerprint_scope

T0 = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)


def new_license(expires_at: datetime | None = None) -> License:
    lic = License.create(
        id=uuid4(), product_id=uuid4(), policy_id=uuid4(), key_hash="cd" * 32,
        expires_at=expires_at, at=T0,
    )  # fmt: skip
    lic.collect_events()
    return lic


def activate(lic: License, fingerprint: str, **kwargs: Any) -> UUID:
    kwargs.setdefault("max_machines", 2)
    kwargs.setdefault("at", T0)
    return lic.activate_machine(machine_id=uuid4(), fingerprint=fingerprint, **kwargs).machine.id


def names(lic: License) -> list[str]:
    return [type(e).__name__ for e in lic.collect_events()]


def test_activation_records_the_machine() -> None:
    lic = new_license()
    machine_id = uuid4()
    activation = lic.activate_machine(
        machine_id=machine_id, fingerprint="fp-00000001", name="laptop", platform="linux",
        hostname="h", cores=8, metadata={"a": 1}, ip_address="10.0.0.1", max_machines=1, at=T0,
    )  # fmt: skip
    assert activation.created
    machine = activation.machine
    assert (machine.id, machine.license_id, machine.cores) == (machine_id, lic.id, 8)
    assert machine.heartbeat_status == HeartbeatStatus.NOT_STARTED
    assert machine.created_at == T0
    assert machine.heartbeat_deadline(60) == T0 + timedelta(hours=1)
    assert names(lic) == ["MachineActivated"]
    assert lic.machine_count == 1


def test_activation_is_idempotent_for_an_active_fingerprint() -> None:
    lic = new_license()
    first = activate(lic, "fp-00000001", max_machines=1)
    lic.collect_events()
    again = lic.activate_machine(
        machine_id=uuid4(), fingerprint="fp-00000001", max_machines=1, at=T0
    )
    assert not again.created
    assert again.machine.id == first
    assert lic.collect_events() == []


def test_activation_beyond_seats_is_refused() -> None:
    lic = new_license()
    activate(lic, "fp-00000001")
    activate(lic, "fp-00000002")
    with pytest.raises(MachineLimitExceeded) as caught:
        activate(lic, "fp-00000003")
    assert caught.value.details == {"max": 2, "current": 2}
    assert caught.value.code == ErrorCode.MACHINE_LIMIT_EXCEEDED


def test_floating_seats_ignore_dead_machines() -> None:
    lic = new_license()
    first = activate(lic, "fp-00000001", max_machines=1, floating=True, allow_transfer=True)
    with pytest.raises(FloatingLimitExceeded):
        activate(lic, "fp-00000002", max_machines=1, floating=True, allow_transfer=True)
    lic.machine_died(machine_id=first, at=T0, deactivate=False)
    activate(lic, "fp-00000002", max_machines=1, floating=True, allow_transfer=True)
    assert lic.machine_count == 2


def test_freed_seat_goes_only_to_a_known_fingerprint_without_transfer() -> None:
    lic = new_license()
    a = activate(lic, "fp-0000000a")
    activate(lic, "fp-0000000b")
    lic.deactivate_machine(machine_id=a, at=T0)
    with pytest.raises(MachineLimitExceeded) as caught:
        activate(lic, "fp-0000000c")
    assert caught.value.details["reason"] == "MACHINE_TRANSFER_NOT_ALLOWED"
    activate(lic, "fp-0000000a")
    assert lic.fingerprints_used == ["fp-0000000a", "fp-0000000b"]


def test_freed_seat_goes_to_any_fingerprint_with_transfer() -> None:
    lic = new_license()
    a = activate(lic, "fp-0000000a", allow_transfer=True)
    activate(lic, "fp-0000000b", allow_transfer=True)
    lic.deactivate_machine(machine_id=a, at=T0)
    activate(lic, "fp-0000000c", allow_transfer=True)


@pytest.mark.parametrize(
    ("command", "code"),
    [
        ("suspend", ErrorCode.LICENSE_SUSPENDED),
        ("revoke", ErrorCode.LICENSE_REVOKED),
        ("ban", ErrorCode.LICENSE_BANNED),
    ],
)
def test_activation_on_an_unusable_license_is_refused(command: str, code: ErrorCode) -> None:
    lic = new_license()
    getattr(lic, command)(at=T0)
    with pytest.raises(LicenseStateError) as caught:
        activate(lic, "fp-00000001")
    assert caught.value.code == code


def test_expired_license_refuses_activation_only_when_the_strategy_says_so() -> None:
    lic = new_license(expires_at=T0)
    with pytest.raises(LicenseStateError) as caught:
        activate(lic, "fp-00000001", expired_blocks=True)
    assert caught.value.code == ErrorCode.LICENSE_EXPIRED
    activate(lic, "fp-00000001", expired_blocks=False)


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"fingerprint": "short"}, ["fingerprint"]),
        ({"fingerprint": "x" * 257}, ["fingerprint"]),
        ({"platform": "amiga"}, ["platform"]),
        ({"cores": 0}, ["cores"]),
    ],
)
def test_activation_fields_are_validated(fields: dict[str, Any], path: list[str]) -> None:
    args: dict[str, Any] = {"fingerprint": "fp-00000001", **fields}
    with pytest.raises(ValidationFailed) as caught:
        new_license().activate_machine(machine_id=uuid4(), max_machines=None, at=T0, **args)
    assert caught.value.details["issues"][0]["path"] == path


def test_deactivated_machine_is_gone() -> None:
    lic = new_license()
    machine_id = activate(lic, "fp-00000001")
    lic.deactivate_machine(machine_id=machine_id, at=T0 + timedelta(minutes=1))
    assert lic.active_machines == []
    assert lic.machine_by_fingerprint("fp-00000001") is None
    with pytest.raises(NotFound):
        lic.deactivate_machine(machine_id=machine_id, at=T0)
    with pytest.raises(NotFound):
        lic.machine(machine_id)


def test_update_machine_records_only_changes() -> None:
    lic = new_license()
    machine_id = activate(lic, "fp-00000001")
    lic.collect_events()
    assert lic.update_machine(machine_id=machine_id, name="box", at=T0)
    assert not lic.update_machine(machine_id=machine_id, name="box", at=T0)
    assert lic.machine(machine_id).name == "box"
    assert names(lic) == ["MachineUpdated"]


def test_heartbeat_records_only_state_changes() -> None:
    lic = new_license()
    machine_id = activate(lic, "fp-00000001")
    lic.collect_events()
    t1, t2, t3 = (T0 + timedelta(minutes=n) for n in (1, 2, 90))
    assert lic.record_heartbeat(machine_id=machine_id, at=t1) == "MachineHeartbeatStarted"
    assert lic.record_heartbeat(machine_id=machine_id, at=t2) is None
    assert lic.machine_died(machine_id=machine_id, at=t3, deactivate=False)
    assert not lic.machine_died(machine_id=machine_id, at=t3, deactivate=False)
    assert lic.machine(machine_id).heartbeat_status == HeartbeatStatus.DEAD
    assert lic.record_heartbeat(machine_id=machine_id, at=t3) == "MachineRevived"
    assert names(lic) == ["MachineHeartbeatStarted", "MachineDied", "MachineRevived"]
    assert lic.machine(machine_id).last_heartbeat_at == t3


def test_dead_machine_is_deactivated_under_deactivate_dead() -> None:
    lic = new_license()
    machine_id = activate(lic, "fp-00000001")
    lic.collect_events()
    assert lic.machine_died(machine_id=machine_id, at=T0, deactivate=True)
    events = lic.collect_events()
    assert [type(e).__name__ for e in events] == ["MachineDied", "MachineDeactivated"]
    assert vars(events[1])["reason"] == "heartbeat_dead"
    assert lic.machine_count == 0
    assert not lic.machine_died(machine_id=machine_id, at=T0, deactivate=True)


def test_reviving_an_alive_machine_is_a_conflict() -> None:
    lic = new_license()
    machine_id = activate(lic, "fp-00000001")
    with pytest.raises(InvalidTransition):
        lic.machine_revived(machine_id=machine_id, at=T0)
    lic.machine_heartbeat_started(machine_id=machine_id, at=T0)
    with pytest.raises(InvalidTransition):
        lic.machine_heartbeat_started(machine_id=machine_id, at=T0)


def test_a_refused_activation_can_be_recorded_as_limit_reached() -> None:
    lic = new_license()
    activate(lic, "fp-00000001", max_machines=1)
    lic.collect_events()
    with pytest.raises(MachineLimitExceeded) as refused:
        activate(lic, "fp-00000002", max_machines=1)
    assert names(lic) == []  # the refusal itself records nothing

    lic.record_limit_reached(refused.value, fingerprint="fp-00000002", at=T0)

    (event,) = lic.collect_events()
    assert type(event).__name__ == "LimitReached"
    assert vars(event)["code"] == "MACHINE_LIMIT_EXCEEDED"
    assert (vars(event)["maximum"], vars(event)["current"]) == (1, 1)
    assert lic.machine_count == 1


def test_activation_records_the_fingerprint_scope() -> None:
    lic = new_license()
    machine_id = activate(lic, "fp-00000001", fingerprint_scope="account")

    assert lic.machine(machine_id).fingerprint_scope == "account"
    found = lic.machine_by_fingerprint("fp-00000001")
    assert found is not None
    assert found.fingerprint_scope == "account"


def test_fingerprint_scopes_follow_the_uniqueness_rule() -> None:
    policy_id = str(uuid4())

    assert fingerprint_scope(FingerprintUniqueness.PER_LICENSE, policy_id) is None
    assert fingerprint_scope(FingerprintUniqueness.PER_POLICY, policy_id) == f"policy:{policy_id}"
    assert fingerprint_scope(FingerprintUniqueness.PER_ACCOUNT, policy_id) == "account"


def test_the_expiry_is_due_until_recorded_and_again_after_a_renewal() -> None:
    lic = new_license(expires_at=T0 + timedelta(days=1))
    assert lic.expiry_due_at == T0 + timedelta(days=1)

    assert lic.record_expired(at=T0 + timedelta(days=2))
    assert lic.expiry_due_at is None
    lic.renew(expires_at=T0 + timedelta(days=5), at=T0 + timedelta(days=2))
    assert lic.expiry_due_at == T0 + timedelta(days=5)
    lic.revoke(at=T0 + timedelta(days=3))
    assert lic.expiry_due_at is None
