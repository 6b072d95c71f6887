"""`validate`: one table row per code of API.md §5.2, one per precedence pair, properties."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from uuid import UUID
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.domain.codes import ExpirationStrategy
from ledger.domain.codes import HeartbeatStatus
from ledger.domain.codes import LicenseStatus
from ledger.domain.codes import ValidationCode
from ledger.domain.validation import Decision
from ledger.domain.validation import LicenseFacts
from ledger.domain.validation import MachineFacts
from ledger.domain.validation import PolicyFacts
from ledger.domain.validation import decision_holds_until
from ledger.domain.validation import validate

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
KNOWN = "fp-known-0001"
OTHER = "fp-other-0002"
UNKNOWN = "fp-unknown-0003"


def machine(fingerprint: str = KNOWN, **changes: object) -> MachineFacts:
    base = MachineFacts(
        id=uuid4(),
        fingerprint=fingerprint,
        name=None,
        heartbeat_status=HeartbeatStatus.ALIVE,
        created_at=NOW - timedelta(minutes=30),
        last_heartbeat_at=NOW - timedelta(minutes=5),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


BASE_LICENSE = LicenseFacts(
    id=UUID(int=1),
    status=LicenseStatus.ACTIVE,
    name="Pro seat",
    expires_at=NOW + timedelta(days=30),
    uses_count=0,
    max_machines_override=None,
    max_uses_override=None,
    entitlements=("export",),
)
BASE_POLICY = PolicyFacts(
    max_machines=2,
    max_uses=None,
    floating=False,
    expiration_strategy=ExpirationStrategy.RESTRICT_ACCESS,
    require_heartbeat=False,
    heartbeat_interval_minutes=60,
    require_fingerprint=True,
    overridable=True,
    entitlements=("pro",),
)


@dataclass(frozen=True)
class Scenario:
    """A license that validates VALID, which each condition below changes in one way."""

    license: LicenseFacts = BASE_LICENSE
    policy: PolicyFacts = BASE_POLICY
    machines: tuple[MachineFacts, ...] = (machine(),)
    fingerprint: str | None = KNOWN
    requested: tuple[str, ...] = ("pro",)

    def lic(self, **changes: object) -> Scenario:
        return dataclasses.replace(self, license=dataclasses.replace(self.license, **changes))  # type: ignore[arg-type]

    def pol(self, **changes: object) -> Scenario:
        return dataclasses.replace(self, policy=dataclasses.replace(self.policy, **changes))  # type: ignore[arg-type]

    def run(self) -> Decision:
        return validate(
            self.license,
            self.policy,
            self.machines,
            fingerprint=self.fingerprint,
            requested=self.requested,
            now=NOW,
        )


Condition = Callable[[Scenario], Scenario]
PAST = NOW - timedelta(seconds=1)


def _over_seats(s: Scenario) -> Scenario:
    # The limit was lowered after two machines activated: even the matched one is refused.
    return dataclasses.replace(s, machines=(*s.machines, machine(OTHER))).lic(
        max_machines_override=1
    )


def _no_seat_free(s: Scenario) -> Scenario:
    return dataclasses.replace(s, fingerprint=UNKNOWN, machines=(*s.machines, machine(OTHER)))


def _heartbeat_overdue(s: Scenario) -> Scenario:
    overdue = tuple(
        dataclasses.replace(
            m, last_heartbeat_at=NOW - timedelta(minutes=61), created_at=NOW - timedelta(days=1)
        )
        for m in s.machines
    )
    return dataclasses.replace(s, machines=overdue).pol(require_heartbeat=True)


# name -> (condition, the code it yields alone, valid). In precedence order.
CONDITIONS: dict[str, tuple[Condition, ValidationCode, bool]] = {
    "banned": (lambda s: s.lic(status=LicenseStatus.BANNED), ValidationCode.BANNED, False),
    "revoked": (lambda s: s.lic(status=LicenseStatus.REVOKED), ValidationCode.REVOKED, False),
    "suspended": (
        lambda s: s.lic(status=LicenseStatus.SUSPENDED),
        ValidationCode.SUSPENDED,
        False,
    ),
    "expired_restrict": (lambda s: s.lic(expires_at=PAST), ValidationCode.EXPIRED, False),
    "expired_revoke": (
        lambda s: s.lic(expires_at=PAST).pol(expiration_strategy=ExpirationStrategy.REVOKE),
        ValidationCode.EXPIRED,
        False,
    ),
    "uses_exhausted": (
        lambda s: s.lic(uses_count=3).pol(max_uses=3),
        ValidationCode.USAGE_LIMIT_EXCEEDED,
        False,
    ),
    "uses_override_exhausted": (
        lambda s: s.lic(uses_count=1, max_uses_override=1).pol(max_uses=10),
        ValidationCode.USAGE_LIMIT_EXCEEDED,
        False,
    ),
    "entitlement_missing": (
        lambda s: dataclasses.replace(s, requested=("pro", "enterprise")),
        ValidationCode.ENTITLEMENTS_MISSING,
        False,
    ),
    "no_fingerprint": (
        lambda s: dataclasses.replace(s, fingerprint=None),
        ValidationCode.FINGERPRINT_REQUIRED,
        False,
    ),
    "unknown_fingerprint": (
        lambda s: dataclasses.replace(s, fingerprint=UNKNOWN),
        ValidationCode.FINGERPRINT_NOT_FOUND,
        False,
    ),
    "no_seat_free": (_no_seat_free, ValidationCode.MACHINE_LIMIT_EXCEEDED, False),
    "over_seats": (_over_seats, ValidationCode.MACHINE_LIMIT_EXCEEDED, False),
    "heartbeat_overdue": (_heartbeat_overdue, ValidationCode.HEARTBEAT_REQUIRED, False),
    "heartbeat_dead": (
        lambda s: dataclasses.replace(
            s,
            machines=tuple(
                dataclasses.replace(m, heartbeat_status=HeartbeatStatus.DEAD) for m in s.machines
            ),
        ).pol(require_heartbeat=True),
        ValidationCode.HEARTBEAT_REQUIRED,
        False,
    ),
    "expired_allow": (
        lambda s: s.lic(expires_at=PAST).pol(expiration_strategy=ExpirationStrategy.ALLOW_ACCESS),
        ValidationCode.EXPIRED,
        True,
    ),
}
ORDER = list(CONDITIONS)
# Conditions that cannot hold at once (one stored status; one strategy; a fingerprint
# both absent and given; a heartbeat check needs the match another condition removes).
_STATUSES = {"banned", "revoked", "suspended"}
_EXPIRIES = {"expired_restrict", "expired_revoke", "expired_allow"}
_FINGERPRINTS = {"no_fingerprint", "unknown_fingerprint", "no_seat_free", "over_seats"}
_NO_MATCH = {"no_fingerprint", "unknown_fingerprint", "no_seat_free"}
_HEARTBEATS = {"heartbeat_overdue", "heartbeat_dead"}
_USES = {"uses_exhausted", "uses_override_exhausted"}


def _compatible(a: str, b: str) -> bool:
    pair = {a, b}
    for group in (_STATUSES, _EXPIRIES, _FINGERPRINTS, _HEARTBEATS, _USES):
        if len(pair & group) == 2:
            return False
    return not (pair & _NO_MATCH and pair & _HEARTBEATS)


PAIRS = [(a, b) for a, b in itertools.combinations(ORDER, 2) if _compatible(a, b)]


def test_the_base_scenario_is_valid() -> None:
    decision = Scenario().run()
    assert (decision.valid, decision.code) == (True, ValidationCode.VALID)
    assert decision.machine is not None
    assert decision.machine.fingerprint == KNOWN
    assert decision.entitlements == ("pro", "export")
    assert decision.status == LicenseStatus.ACTIVE


@pytest.mark.parametrize("name", ORDER)
def test_each_condition_alone_yields_its_code(name: str) -> None:
    condition, code, valid = CONDITIONS[name]
    decision = condition(Scenario()).run()
    assert (decision.code, decision.valid) == (code, valid)


@pytest.mark.parametrize(("first", "second"), PAIRS, ids=[f"{a}>{b}" for a, b in PAIRS])
def test_the_earlier_condition_wins(first: str, second: str) -> None:
    first_condition, code, valid = CONDITIONS[first]
    second_condition = CONDITIONS[second][0]
    for combined in (
        first_condition(second_condition(Scenario())),
        second_condition(first_condition(Scenario())),
    ):
        decision = combined.run()
        assert (decision.code, decision.valid) == (code, valid)


def test_every_code_but_not_found_has_a_row() -> None:
    covered = {code for _, code, _ in CONDITIONS.values()} | {ValidationCode.VALID}
    assert covered == set(ValidationCode) - {ValidationCode.NOT_FOUND}


def test_missing_entitlements_are_listed_once_in_request_order() -> None:
    decision = dataclasses.replace(Scenario(), requested=("zeta", "pro", "alpha", "zeta")).run()
    assert decision.code == ValidationCode.ENTITLEMENTS_MISSING
    assert decision.missing == ("zeta", "alpha")


def test_expired_status_is_derived_from_time() -> None:
    decision = Scenario().lic(expires_at=NOW).run()
    assert decision.status == LicenseStatus.EXPIRED


def test_floating_seats_ignore_dead_machines() -> None:
    dead = machine(OTHER, heartbeat_status=HeartbeatStatus.DEAD)
    scenario = dataclasses.replace(Scenario(), machines=(machine(), dead), fingerprint=UNKNOWN)
    assert scenario.run().code == ValidationCode.MACHINE_LIMIT_EXCEEDED
    assert scenario.pol(floating=True).run().code == ValidationCode.FINGERPRINT_NOT_FOUND


def test_override_counts_only_when_the_policy_is_overridable() -> None:
    scenario = _no_seat_free(Scenario()).lic(max_machines_override=5)
    assert scenario.run().code == ValidationCode.FINGERPRINT_NOT_FOUND
    assert scenario.pol(overridable=False).run().code == ValidationCode.MACHINE_LIMIT_EXCEEDED


def test_heartbeat_deadline_starts_at_activation_without_a_ping() -> None:
    fresh = machine(created_at=NOW - timedelta(minutes=59), last_heartbeat_at=None)
    scenario = dataclasses.replace(Scenario(), machines=(fresh,)).pol(require_heartbeat=True)
    assert scenario.run().code == ValidationCode.VALID
    late = dataclasses.replace(fresh, created_at=NOW - timedelta(minutes=60))
    assert dataclasses.replace(scenario, machines=(late,)).run().code == (
        ValidationCode.HEARTBEAT_REQUIRED
    )


def test_no_fingerprint_is_fine_when_the_policy_does_not_require_one() -> None:
    scenario = dataclasses.replace(Scenario(), fingerprint=None).pol(require_fingerprint=False)
    decision = scenario.run()
    assert (decision.code, decision.machine) == (ValidationCode.VALID, None)


# Properties over arbitrary facts.

FINGERPRINTS = st.sampled_from([KNOWN, OTHER, UNKNOWN])
CODES = st.sampled_from(["pro", "export", "beta"])
OFFSETS = st.integers(min_value=-3 * 24 * 60, max_value=3 * 24 * 60).map(
    lambda minutes: NOW + timedelta(minutes=minutes)
)
LIMITS = st.none() | st.integers(min_value=1, max_value=4)

machines_strategy = st.lists(
    st.builds(
        MachineFacts,
        id=st.uuids(),
        fingerprint=FINGERPRINTS,
        name=st.none(),
        heartbeat_status=st.sampled_from(list(HeartbeatStatus)),
        created_at=OFFSETS,
        last_heartbeat_at=st.none() | OFFSETS,
    ),
    max_size=5,
    unique_by=lambda m: m.fingerprint,
)
licenses = st.builds(
    LicenseFacts,
    id=st.uuids(),
    status=st.sampled_from(
        [LicenseStatus.ACTIVE, LicenseStatus.SUSPENDED, LicenseStatus.REVOKED, LicenseStatus.BANNED]
    ),
    name=st.none(),
    expires_at=st.none() | OFFSETS,
    uses_count=st.integers(min_value=0, max_value=5),
    max_machines_override=LIMITS,
    max_uses_override=LIMITS,
    entitlements=st.lists(CODES, unique=True).map(tuple),
)
policies = st.builds(
    PolicyFacts,
    max_machines=LIMITS,
    max_uses=LIMITS,
    floating=st.booleans(),
    expiration_strategy=st.sampled_from(list(ExpirationStrategy)),
    require_heartbeat=st.booleans(),
    heartbeat_interval_minutes=st.integers(min_value=1, max_value=24 * 60),
    require_fingerprint=st.booleans(),
    overridable=st.booleans(),
    entitlements=st.lists(CODES, unique=True).map(tuple),
)


@given(
    license_=licenses,
    policy=policies,
    machines=machines_strategy,
    fingerprint=st.none() | FINGERPRINTS,
    requested=st.lists(CODES, max_size=3),
)
def test_valid_exactly_for_valid_and_expired_under_allow_access(
    license_: LicenseFacts,
    policy: PolicyFacts,
    machines: list[MachineFacts],
    fingerprint: str | None,
    requested: list[str],
) -> None:
    decision = validate(
        license_, policy, machines, fingerprint=fingerprint, requested=requested, now=NOW
    )
    allowed_expiry = (
        decision.code == ValidationCode.EXPIRED
        and policy.expiration_strategy == ExpirationStrategy.ALLOW_ACCESS
    )
    assert decision.valid == (decision.code == ValidationCode.VALID or allowed_expiry)
    assert decision.code != ValidationCode.NOT_FOUND
    assert bool(decision.missing) == (decision.code == ValidationCode.ENTITLEMENTS_MISSING)
    if decision.machine is not None:
        assert decision.machine.fingerprint == fingerprint
    if decision.valid:
        assert set(requested) <= set(decision.entitlements)
        assert fingerprint is None or decision.machine is not None
    if license_.status != LicenseStatus.ACTIVE:
        assert decision.code == ValidationCode(license_.status.upper())


@given(
    license_=licenses,
    policy=policies,
    machines=machines_strategy,
    fingerprint=st.none() | FINGERPRINTS,
    requested=st.lists(CODES, max_size=3),
    later=st.lists(st.integers(min_value=0, max_value=4 * 24 * 60 * 60), max_size=6),
)
def test_a_decision_holds_until_the_instant_it_names(
    license_: LicenseFacts,
    policy: PolicyFacts,
    machines: list[MachineFacts],
    fingerprint: str | None,
    requested: list[str],
    later: list[int],
) -> None:
    def at(moment: datetime) -> Decision:
        return validate(
            license_, policy, machines, fingerprint=fingerprint, requested=requested, now=moment
        )

    decision = at(NOW)
    until = decision_holds_until(license_, policy, decision, NOW)
    for seconds in later:
        moment = NOW + timedelta(seconds=seconds)
        if until is None or moment < until:
            assert at(moment) == decision
    if until is not None:
        # The named instant is one where the answer can change: never in the past.
        assert until > NOW
        assert at(until - timedelta(microseconds=1)) == decision
    far = NOW + timedelta(days=4)  # past every instant the strategies make
    if at(far) != decision:
        assert until is not None
        assert until <= far
