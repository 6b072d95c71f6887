"""License lifecycle: given events -> command -> events or error."""

from __future__ import annotations

import json
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest

from ledger.domain.codes import ErrorCode
from ledger.domain.codes import LicenseStatus
from ledger.domain.errors import BusinessRuleViolation
from ledger.domain.errors import InvalidTransition
from ledger.domain.errors import NotFound
from ledger.domain.errors import UsageLimitExceeded
from ledger.domain.errors import ValidationFailed
from ledger.domain.license import License

T0 = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)
HASH = "ab" * 32


def new_license(**kwargs: Any) -> License:
    kwargs.setdefault("expires_at", T0 + timedelta(days=30))
    lic = License.create(
        id=uuid4(), product_id=uuid4(), policy_id=uuid4(), key_hash=HASH, at=T0, **kwargs
    )
    lic.collect_events()
    return lic


def names(lic: License) -> list[str]:
    return [type(e).__name__ for e in lic.collect_events()]


def replay(events: list[Any]) -> Any:
    aggregate = None
    for e in events:
        aggregate = e.mutate(aggregate)
    return aggregate


LIBRARY_FIELDS = {"originator_id", "originator_version", "timestamp", "originator_topic"}


def assert_json_native(events: list[Any]) -> None:
    def check(value: object) -> None:
        assert not isinstance(value, float)
        if isinstance(value, dict):
            for v in value.values():
                check(v)
        elif isinstance(value, list):
            for v in value:
                check(v)

    for e in events:
        data = {k: v for k, v in e.__dict__.items() if k not in LIBRARY_FIELDS}
        json.dumps(data)  # raises on datetimes, UUIDs, enums would pass as str
        check(data)


def test_created_license_is_active_with_the_given_time_and_id() -> None:
    license_id = uuid4()
    lic = License.create(
        id=license_id, product_id=uuid4(), policy_id=uuid4(), key_hash=HASH,
        name="Pro", entitlements=["export", "export"], at=T0,
    )  # fmt: skip
    events = lic.collect_events()
    assert [type(e).__name__ for e in events] == ["Created"]
    assert lic.id == license_id
    assert lic.created_at == T0 == events[0].timestamp
    assert lic.status_at(T0) == LicenseStatus.ACTIVE
    assert lic.entitlements == ["export"]
    assert lic.expires_at is None
    assert_json_native(list(events))


def test_create_refuses_invalid_fields_with_camel_case_paths() -> None:
    with pytest.raises(ValidationFailed) as caught:
        License.create(
            id=uuid4(), product_id=uuid4(), policy_id=uuid4(), key_hash=HASH,
            max_machines_override=0, entitlements=["Bad Code"], metadata={"x": object()},
            at=T0,
        )  # fmt: skip
    paths = [issue["path"] for issue in caught.value.details["issues"]]
    assert paths == [["maxMachinesOverride"], ["entitlements", 0], ["metadata"]]
    assert caught.value.code == ErrorCode.VALIDATION_ERROR


def test_naive_time_is_a_programming_error() -> None:
    lic = new_license()
    with pytest.raises(ValueError, match="naive"):
        lic.suspend(at=datetime(2026, 1, 1))


def test_suspend_and_reinstate_record_events_with_the_given_timestamps() -> None:
    lic = new_license()
    lic.suspend(at=T0 + timedelta(hours=1))
    assert lic.status_at(T0 + timedelta(hours=1)) == LicenseStatus.SUSPENDED
    assert lic.suspended_at == T0 + timedelta(hours=1)
    lic.reinstate(at=T0 + timedelta(hours=2))
    events = lic.collect_events()
    assert [type(e).__name__ for e in events] == ["Suspended", "Reinstated"]
    assert [e.timestamp for e in events] == [T0 + timedelta(hours=1), T0 + timedelta(hours=2)]
    assert lic.updated_at == T0 + timedelta(hours=2)
    assert lic.suspended_at is None


def test_expired_is_derived_from_time() -> None:
    lic = new_license(expires_at=T0 + timedelta(days=1))
    assert lic.status_at(T0 + timedelta(hours=23)) == LicenseStatus.ACTIVE
    assert lic.status_at(T0 + timedelta(days=1)) == LicenseStatus.EXPIRED


def test_suspended_wins_over_expired_and_reinstating_shows_expired() -> None:
    lic = new_license(expires_at=T0 + timedelta(days=1))
    lic.suspend(at=T0)
    later = T0 + timedelta(days=2)
    assert lic.status_at(later) == LicenseStatus.SUSPENDED
    lic.reinstate(at=later)
    assert lic.status_at(later) == LicenseStatus.EXPIRED


@pytest.mark.parametrize("terminal", ["revoke", "ban"])
@pytest.mark.parametrize(
    "action", ["suspend", "reinstate", "revoke", "ban", "renew", "reset_usage"]
)
def test_terminal_licenses_refuse_every_action(terminal: str, action: str) -> None:
    lic = new_license()
    getattr(lic, terminal)(at=T0)
    lic.collect_events()
    kwargs: dict[str, Any] = {"duration_days": 10} if action == "renew" else {}
    with pytest.raises(InvalidTransition) as caught:
        getattr(lic, action)(at=T0, **kwargs)
    assert caught.value.code == ErrorCode.CONFLICT
    assert lic.collect_events() == []


def test_update_of_a_revoked_license_is_a_conflict() -> None:
    lic = new_license()
    lic.revoke(at=T0)
    with pytest.raises(InvalidTransition):
        lic.update(name="x", at=T0)


def test_expired_license_can_be_revoked_and_banned_but_not_suspended() -> None:
    lic = new_license(expires_at=T0)
    with pytest.raises(InvalidTransition):
        lic.suspend(at=T0)
    lic.revoke(at=T0)
    assert lic.status_at(T0) == LicenseStatus.REVOKED


def test_reinstating_an_active_license_is_a_conflict() -> None:
    with pytest.raises(InvalidTransition):
        new_license().reinstate(at=T0)


def test_renew_extends_from_the_later_of_now_and_expiry() -> None:
    lic = new_license(expires_at=T0 + timedelta(days=5))
    assert lic.renew(duration_days=30, at=T0) == T0 + timedelta(days=35)
    expired = new_license(expires_at=T0)
    later = T0 + timedelta(days=10)
    assert expired.status_at(later) == LicenseStatus.EXPIRED
    assert expired.renew(duration_days=30, at=later) == later + timedelta(days=30)
    assert expired.status_at(later) == LicenseStatus.ACTIVE
    event = expired.collect_events()[-1]
    assert type(event).__name__ == "Renewed"
    assert vars(event)["previous_expires_at"] == "2026-01-15T10:30:00.000000Z"


def test_renew_without_date_or_duration_is_a_business_rule_violation() -> None:
    with pytest.raises(BusinessRuleViolation):
        new_license().renew(at=T0)


def test_renew_to_a_past_date_is_refused() -> None:
    with pytest.raises(ValidationFailed):
        new_license().renew(expires_at=T0 - timedelta(days=1), at=T0)


def test_patching_expires_at_takes_an_expired_license_back_to_active() -> None:
    lic = new_license(expires_at=T0)
    later = T0 + timedelta(days=3)
    assert lic.update(expires_at=later + timedelta(days=1), at=later)
    assert lic.status_at(later) == LicenseStatus.ACTIVE
    event = lic.collect_events()[-1]
    assert vars(event)["changes"] == {"expires_at": "2026-01-19T10:30:00.000000Z"}


def test_patch_with_no_effective_change_records_nothing() -> None:
    lic = new_license(name="Pro")
    assert not lic.update(name="Pro", at=T0)
    assert lic.collect_events() == []


def test_record_expired_is_recorded_once_per_expiry() -> None:
    lic = new_license(expires_at=T0 + timedelta(days=1))
    assert not lic.record_expired(at=T0)
    assert lic.record_expired(at=T0 + timedelta(days=1))
    assert not lic.record_expired(at=T0 + timedelta(days=1, minutes=1))
    assert names(lic) == ["Expired"]
    lic.renew(duration_days=1, at=T0 + timedelta(days=2))
    assert lic.record_expired(at=T0 + timedelta(days=4))
    assert names(lic) == ["Renewed", "Expired"]


def test_record_expired_under_revoke_strategy_revokes() -> None:
    lic = new_license(expires_at=T0)
    assert lic.record_expired(at=T0, revoke=True)
    assert names(lic) == ["Expired", "Revoked"]
    assert not lic.record_expired(at=T0, revoke=True)


def test_usage_beyond_the_cap_is_refused() -> None:
    lic = new_license()
    assert lic.increment_usage(increment=3, max_uses=5, at=T0) == 3
    with pytest.raises(UsageLimitExceeded) as caught:
        lic.increment_usage(increment=3, max_uses=5, at=T0)
    assert caught.value.details == {"max": 5, "current": 3}
    assert lic.uses_count == 3
    lic.reset_usage(at=T0)
    assert lic.uses_count == 0
    assert names(lic) == ["UsageIncremented", "UsageReset"]


def test_increment_must_be_positive() -> None:
    with pytest.raises(ValidationFailed):
        new_license().increment_usage(increment=0, max_uses=None, at=T0)


def test_validation_uses_never_exceed_max_uses() -> None:
    lic = new_license()
    lic.record_validation_use(max_uses=2, at=T0)
    lic.record_validation_use(max_uses=2, at=T0)
    with pytest.raises(UsageLimitExceeded):
        lic.record_validation_use(max_uses=2, at=T0)
    assert lic.uses_count == 2


def test_license_is_activated_once() -> None:
    lic = new_license()
    assert lic.mark_activated(at=T0)
    assert not lic.mark_activated(at=T0 + timedelta(seconds=1))
    assert names(lic) == ["Activated"]
    assert lic.activated_at == T0


def test_entitlements_attach_and_detach_only_record_changes() -> None:
    lic = new_license(entitlements=["a"])
    assert lic.attach_entitlements(codes=["a", "b"], at=T0) == ["b"]
    assert lic.detach_entitlements(codes=["a", "zz"], at=T0) == ["a"]
    assert lic.attach_entitlements(codes=["b"], at=T0) == []
    assert names(lic) == ["EntitlementsAttached", "EntitlementsDetached"]
    assert lic.effective_entitlements(["p", "b"]) == ["p", "b"]


def test_deleted_license_is_not_found_for_every_command() -> None:
    lic = new_license()
    lic.delete(at=T0)
    assert lic.deleted
    with pytest.raises(NotFound):
        lic.suspend(at=T0)
    with pytest.raises(NotFound):
        lic.delete(at=T0)


def test_replaying_events_rebuilds_the_same_state() -> None:
    lic = License.create(
        id=uuid4(), product_id=uuid4(), policy_id=uuid4(), key_hash=HASH,
        expires_at=T0 + timedelta(days=1), metadata={"tier": {"n": 1}}, at=T0,
    )  # fmt: skip
    lic.suspend(at=T0)
    lic.reinstate(at=T0)
    lic.update(metadata={"tier": {"n": 2}}, user_email="a@b.c", at=T0)
    lic.activate_machine(machine_id=uuid4(), fingerprint="f" * 16, max_machines=2, at=T0)
    lic.increment_usage(increment=2, max_uses=None, at=T0)
    lic.record_expired(at=T0 + timedelta(days=1))
    events = list(lic.collect_events())
    assert_json_native(events)
    rebuilt = replay(events)
    assert rebuilt == lic
    assert rebuilt.metadata == {"tier": {"n": 2}}


def test_mutating_state_after_the_fact_does_not_alter_recorded_events() -> None:
    metadata: dict[str, Any] = {"k": ["v"]}
    lic = License.create(
        id=uuid4(), product_id=uuid4(), policy_id=uuid4(), key_hash=HASH,
        metadata=metadata, at=T0,
    )  # fmt: skip
    metadata["k"].append("caller")
    lic.metadata["k"].append("aggregate")
    assert vars(lic.collect_events()[0])["metadata"] == {"k": ["v"]}


def test_license_round_trips_through_the_library_store() -> None:
    from eventsourcing.application import Application  # noqa: PLC0415

    app: Application[Any] = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    lic = License.create(
        id=uuid4(), product_id=uuid4(), policy_id=uuid4(), key_hash=HASH,
        expires_at=T0 + timedelta(days=1), at=T0,
    )  # fmt: skip
    lic.activate_machine(machine_id=uuid4(), fingerprint="f" * 16, max_machines=2, at=T0)
    lic.suspend(at=T0)
    lic.delete(at=T0)
    app.save(lic)
    loaded: License = app.repository.get(lic.id)
    assert loaded == lic
    assert loaded.deleted
