"""Policy: defaults, templates, PATCH, entitlements."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest

from ledger.domain.errors import ValidationFailed
from ledger.domain.policy import Policy
from ledger.domain.templates import DEFAULTS

T0 = datetime(2026, 1, 15, tzinfo=UTC)


def new_policy(**kwargs: Any) -> Policy:
    policy = Policy.create(id=uuid4(), product_id=uuid4(), name="Std", at=T0, **kwargs)
    policy.collect_events()
    return policy


def test_defaults_follow_the_contract() -> None:
    policy = new_policy()
    assert policy.max_machines is None
    assert policy.expiration_strategy == "RESTRICT_ACCESS"
    assert policy.heartbeat_interval_minutes == 60
    assert policy.heartbeat_cull_strategy == "DEACTIVATE_DEAD"
    assert policy.require_fingerprint
    assert policy.offline_allowed
    assert policy.offline_max_days == 14
    assert not policy.allow_machine_transfer
    assert policy.overridable
    assert policy.metadata == {}
    assert policy.expired_blocks
    assert policy.default_expiry(T0) is None


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("desktop_app", {"max_machines": 2, "offline_max_days": 14}),
        ("cli_tool", {"max_machines": 3, "offline_max_days": 7}),
        (
            "saas",
            {
                "max_machines": None,
                "floating": True,
                "require_fingerprint": False,
                "offline_allowed": False,
                "heartbeat_interval_minutes": 1440,
                "require_heartbeat": True,
                "duration_days": 30,
            },
        ),
        (
            "trial",
            {
                "max_machines": 1,
                "offline_allowed": False,
                "is_trial": True,
                "duration_days": 14,
                "trial_duration_days": 14,
            },
        ),
        ("custom", {}),
    ],
)
def test_templates_fill_defaults(template: str, expected: dict[str, Any]) -> None:
    policy = new_policy(template=template)
    for key, value in {**DEFAULTS, **expected}.items():
        assert getattr(policy, key) == value, key


def test_explicit_fields_win_over_the_template() -> None:
    policy = new_policy(template="trial", settings={"max_machines": 5})
    assert (policy.max_machines, policy.is_trial) == (5, True)
    assert policy.default_expiry(T0) == T0 + timedelta(days=14)


def test_out_of_range_settings_are_refused_with_camel_case_paths() -> None:
    with pytest.raises(ValidationFailed) as caught:
        new_policy(
            template="nope",
            settings={"max_machines": 0, "heartbeat_interval_minutes": 0,
                      "offline_max_days": True, "expiration_strategy": "X"},
        )  # fmt: skip
    paths = [i["path"] for i in caught.value.details["issues"]]
    assert paths == [
        ["template"], ["maxMachines"], ["heartbeatIntervalMinutes"], ["offlineMaxDays"],
        ["expirationStrategy"],
    ]  # fmt: skip


def test_patch_changes_only_given_fields_and_reapplies_a_template() -> None:
    policy = new_policy(settings={"floating": True})
    assert policy.update(settings={"max_machines": 4}, at=T0)
    assert (policy.max_machines, policy.floating) == (4, True)
    assert policy.update(template="cli_tool", settings={"offline_max_days": 2}, at=T0)
    assert (policy.max_machines, policy.offline_max_days, policy.template) == (3, 2, "cli_tool")
    assert not policy.update(settings={"max_machines": 3}, at=T0)
    events = policy.collect_events()
    assert [type(e).__name__ for e in events] == ["Updated", "Updated"]
    assert vars(events[0])["changes"] == {"max_machines": 4}


def test_override_wins_only_when_overridable() -> None:
    policy = new_policy(settings={"max_machines": 2, "max_uses": 10})
    assert policy.max_machines_for(5) == 5
    assert policy.max_machines_for(None) == 2
    policy.update(settings={"overridable": False}, at=T0)
    assert policy.max_machines_for(5) == 2
    assert policy.max_uses_for(1) == 10


def test_entitlements_attach_and_detach() -> None:
    policy = new_policy()
    assert policy.attach_entitlements(codes=["a", "b", "a"], at=T0) == ["a", "b"]
    assert policy.detach_entitlements(codes=["a"], at=T0) == ["a"]
    assert policy.entitlements == ["b"]
    with pytest.raises(ValidationFailed):
        policy.attach_entitlements(codes=["UPPER"], at=T0)


def test_deleted_policy_records_deleted() -> None:
    policy = new_policy()
    policy.delete(at=T0)
    assert [type(e).__name__ for e in policy.collect_events()] == ["Deleted"]
