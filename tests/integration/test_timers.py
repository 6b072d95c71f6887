"""Timers (workers/timers.py): heartbeat deadlines and expiries become events, once.

Real PostgreSQL, the worker's own loops driven with an injected clock: no sleeping.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from uuid import UUID
from uuid import uuid4

import pytest

from ledger.application import LedgerApplication
from ledger.commands import licenses
from ledger.commands import machines
from ledger.domain.errors import MachineLimitExceeded
from ledger.domain.templates import PolicySettings
from projections.inline import InlineProjections
from projections.machines import ReadModelFingerprints
from tests.support.machines import FakeClock
from tests.support.machines import IssuedLicense
from tests.support.machines import context
from tests.support.machines import event_types
from tests.support.machines import issue_license
from workers.timers import HeartbeatDeadlines
from workers.timers import LicenseExpiries

PEPPER = secrets.token_bytes(32)
HEARTBEATS: PolicySettings = {
    "max_machines": 1,
    "allow_machine_transfer": True,
    "require_heartbeat": True,
    "heartbeat_interval_minutes": 10,
}


@pytest.fixture(scope="module")
def database(fresh_database: Callable[[], str]) -> str:
    return fresh_database()


def new_ledger(database: str) -> LedgerApplication:
    return LedgerApplication(database, pool_size=4, projector=InlineProjections())


@pytest.fixture(scope="module")
def ledger(database: str) -> Iterator[LedgerApplication]:
    app = new_ledger(database)
    yield app
    app.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def activate(ledger: LedgerApplication, lic: IssuedLicense, clock: FakeClock) -> UUID:
    ctx = context(lic.tenant_id, clock())
    activation = machines.activate_machine(
        ledger,
        ctx,
        license_id=lic.license_id,
        machine_id=uuid4(),
        details=machines.MachineDetails(fingerprint="fp-" + secrets.token_hex(8)),
        fingerprints=ReadModelFingerprints(ledger, ctx.tenant_id),
    )
    return activation.machine.id


def machine_license(
    ledger: LedgerApplication, clock: FakeClock, **settings: Any
) -> tuple[IssuedLicense, UUID]:
    lic = issue_license(ledger, PEPPER, uuid4(), settings={**HEARTBEATS, **settings}, at=clock())
    return lic, activate(ledger, lic, clock)


def drain(loop: HeartbeatDeadlines | LicenseExpiries) -> None:
    while loop.run_once():
        pass


def test_a_missed_heartbeat_kills_the_machine_and_frees_its_seat(
    ledger: LedgerApplication, clock: FakeClock
) -> None:
    lic, _ = machine_license(ledger, clock, heartbeat_cull_strategy="DEACTIVATE_DEAD")
    timers = HeartbeatDeadlines(ledger, clock=clock)
    clock.advance(timedelta(minutes=9))
    drain(timers)
    assert event_types(ledger, lic.tenant_id, lic.license_id)[-1] == "license.machine_activated"

    clock.advance(timedelta(minutes=2))
    drain(timers)

    assert event_types(ledger, lic.tenant_id, lic.license_id)[-2:] == [
        "license.machine_died",
        "license.machine_deactivated",
    ]
    activate(ledger, lic, clock)  # the only seat is free again


def test_keep_dead_marks_the_machine_dead_but_keeps_its_seat(
    ledger: LedgerApplication, clock: FakeClock
) -> None:
    lic, machine_id = machine_license(ledger, clock, heartbeat_cull_strategy="KEEP_DEAD")
    clock.advance(timedelta(minutes=11))

    drain(HeartbeatDeadlines(ledger, clock=clock))
    clock.advance(timedelta(hours=5))
    drain(HeartbeatDeadlines(ledger, clock=clock))

    assert event_types(ledger, lic.tenant_id, lic.license_id)[-1] == "license.machine_died"
    assert event_types(ledger, lic.tenant_id, lic.license_id).count("license.machine_died") == 1
    with pytest.raises(MachineLimitExceeded):
        activate(ledger, lic, clock)
    with ledger.reading(lic.tenant_id) as curs:
        row = curs.execute(
            "SELECT deadline_at FROM machine_heartbeats WHERE machine_id = %s", (machine_id,)
        ).fetchone()
    assert row is not None
    assert row["deadline_at"] is None  # dead: out of the due index until a ping revives it


def test_a_ping_moves_the_deadline(ledger: LedgerApplication, clock: FakeClock) -> None:
    lic, machine_id = machine_license(ledger, clock)
    clock.advance(timedelta(minutes=8))
    ctx = context(lic.tenant_id, clock())
    machines.record_heartbeat(
        ledger, ctx, license_id=lic.license_id, machine_id=machine_id, overdue=lambda: False
    )

    clock.advance(timedelta(minutes=8))  # 16 min after activation, 8 after the ping
    drain(HeartbeatDeadlines(ledger, clock=clock))

    assert event_types(ledger, lic.tenant_id, lic.license_id)[-1] == (
        "license.machine_heartbeat_started"
    )


def test_machines_of_policies_without_heartbeats_never_die(
    ledger: LedgerApplication, clock: FakeClock
) -> None:
    lic, _ = machine_license(ledger, clock, require_heartbeat=False)
    clock.advance(timedelta(days=400))

    drain(HeartbeatDeadlines(ledger, clock=clock))

    assert event_types(ledger, lic.tenant_id, lic.license_id)[-1] == "license.machine_activated"


@pytest.mark.parametrize(
    ("strategy", "recorded"),
    [
        ("RESTRICT_ACCESS", ["license.expired"]),
        ("ALLOW_ACCESS", ["license.expired"]),
        ("REVOKE", ["license.expired", "license.revoked"]),
    ],
)
def test_an_expiry_is_recorded_once_when_due(
    ledger: LedgerApplication, clock: FakeClock, strategy: str, recorded: list[str]
) -> None:
    lic = issue_license(
        ledger,
        PEPPER,
        uuid4(),
        settings={"expiration_strategy": strategy},
        expires_at=clock() + timedelta(days=1),
        at=clock(),
    )
    timers = LicenseExpiries(ledger, clock=clock)
    drain(timers)
    assert event_types(ledger, lic.tenant_id, lic.license_id) == ["license.created"]

    clock.advance(timedelta(days=1))
    drain(timers)
    clock.advance(timedelta(days=1))
    drain(timers)

    assert event_types(ledger, lic.tenant_id, lic.license_id) == ["license.created", *recorded]


def test_a_renewal_moves_the_expiry(ledger: LedgerApplication, clock: FakeClock) -> None:
    lic = issue_license(ledger, PEPPER, uuid4(), expires_at=clock() + timedelta(days=1), at=clock())
    timers = LicenseExpiries(ledger, clock=clock)
    clock.advance(timedelta(days=2))
    drain(timers)
    licenses.renew_license(
        ledger, context(lic.tenant_id, clock()), lic.license_id, clock() + timedelta(days=3)
    )

    clock.advance(timedelta(days=2))
    drain(timers)
    clock.advance(timedelta(days=2))
    drain(timers)

    assert event_types(ledger, lic.tenant_id, lic.license_id) == [
        "license.created",
        "license.expired",
        "license.renewed",
        "license.expired",
    ]


def test_two_timer_workers_at_once_record_each_fact_once(
    database: str, ledger: LedgerApplication, clock: FakeClock
) -> None:
    tenants = [uuid4(), uuid4()]
    dying = []
    for i in range(12):
        tenant = tenants[i % 2]
        lic = issue_license(
            ledger,
            PEPPER,
            tenant,
            settings={**HEARTBEATS, "expiration_strategy": "REVOKE"},
            expires_at=clock() + timedelta(minutes=5),
            at=clock(),
        )
        activate(ledger, lic, clock)
        dying.append(lic)
    clock.advance(timedelta(minutes=11))
    workers = [new_ledger(database) for _ in range(2)]
    start = threading.Barrier(len(workers))
    errors: list[BaseException] = []

    def work(app: LedgerApplication) -> None:
        try:
            start.wait()
            loops = [LicenseExpiries(app, clock=clock), HeartbeatDeadlines(app, clock=clock)]
            while sum(loop.run_once() for loop in loops):
                pass
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(app,)) for app in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for app in workers:
        app.close()

    assert errors == []
    for lic in dying:
        history = event_types(ledger, lic.tenant_id, lic.license_id)
        for fact in ("license.expired", "license.revoked", "license.machine_died"):
            assert history.count(fact) == 1, (fact, history)
