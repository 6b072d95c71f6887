"""Properties of the license rules, for all sequences of commands."""

from __future__ import annotations

import contextlib
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from uuid import uuid4

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from ledger.domain.errors import InvalidTransition
from ledger.domain.errors import LicenseStateError
from ledger.domain.errors import MachineLimitExceeded
from ledger.domain.license import License

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ACTIONS = ["suspend", "reinstate", "revoke", "ban", "renew", "advance"]


class Reference:
    """A tiny model of API.md's transitions: stored status + expiry, wire status by time."""

    def __init__(self, expires_at: datetime) -> None:
        self.stored = "active"
        self.expires_at = expires_at

    def status(self, now: datetime) -> str:
        if self.stored == "active" and self.expires_at <= now:
            return "expired"
        return self.stored

    def apply(self, action: str, now: datetime) -> bool:
        """Return whether the action is allowed, applying it if so."""
        status = self.status(now)
        allowed = {
            "suspend": status == "active",
            "reinstate": status == "suspended",
            "revoke": status in {"active", "suspended", "expired"},
            "ban": status in {"active", "suspended", "expired"},
            "renew": status not in {"revoked", "banned"},
        }[action]
        if allowed:
            if action == "renew":
                self.expires_at = max(now, self.expires_at) + timedelta(days=10)
            else:
                self.stored = {
                    "suspend": "suspended", "reinstate": "active", "revoke": "revoked",
                    "ban": "banned",
                }[action]  # fmt: skip
        return allowed


@settings(max_examples=300, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(ACTIONS), st.integers(min_value=0, max_value=20)), max_size=30
    )
)
def test_transitions_follow_the_reference_model(steps: list[tuple[str, int]]) -> None:
    now = T0
    lic = License.create(
        id=uuid4(), product_id=uuid4(), policy_id=uuid4(), key_hash="12" * 32,
        expires_at=T0 + timedelta(days=15), at=T0,
    )  # fmt: skip
    model = Reference(T0 + timedelta(days=15))
    terminal_seen: str | None = None
    for action, days in steps:
        if action == "advance":
            now += timedelta(days=days)
            continue
        before = (lic.version, lic.status_at(now), lic.expires_at)
        allowed = model.apply(action, now)
        try:
            if action == "renew":
                lic.renew(duration_days=10, at=now)
            else:
                getattr(lic, action)(at=now)
        except (InvalidTransition, LicenseStateError):
            assert not allowed, (action, before)
            assert (lic.version, lic.status_at(now), lic.expires_at) == before
        else:
            assert allowed, (action, before)
        assert lic.status_at(now) == model.status(now)
        assert lic.expires_at == model.expires_at
        if terminal_seen is not None:
            assert lic.status_at(now) == terminal_seen
        elif lic.status_at(now) in {"revoked", "banned"}:
            terminal_seen = lic.status_at(now)


@settings(max_examples=300, deadline=None)
@given(
    max_machines=st.integers(min_value=1, max_value=4),
    allow_transfer=st.booleans(),
    steps=st.lists(st.tuples(st.booleans(), st.integers(min_value=0, max_value=7)), max_size=40),
)
def test_seats_are_never_exceeded(
    max_machines: int, allow_transfer: bool, steps: list[tuple[bool, int]]
) -> None:
    lic = License.create(
        id=uuid4(), product_id=uuid4(), policy_id=uuid4(), key_hash="34" * 32, at=T0
    )
    for activate, n in steps:
        fingerprint = f"fingerprint-{n}"
        if activate:
            with contextlib.suppress(MachineLimitExceeded):
                lic.activate_machine(
                    machine_id=uuid4(), fingerprint=fingerprint, max_machines=max_machines,
                    allow_transfer=allow_transfer, at=T0,
                )  # fmt: skip
        else:
            machine = lic.machine_by_fingerprint(fingerprint)
            if machine is not None:
                lic.deactivate_machine(machine_id=machine.id, at=T0)
        assert lic.machine_count <= max_machines
        if not allow_transfer:
            assert len(lic.fingerprints_used) <= max_machines
