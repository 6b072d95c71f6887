"""Seat limits and fingerprint uniqueness are exact under concurrency (real PostgreSQL).

32 activations of distinct fingerprints race for K free seats: exactly K succeed, from
threads sharing one application and from separate processes each with their own. The
seats are exact because every activation appends to the license's one stream
(optimistic concurrency retries the losers on fresh state); fingerprint uniqueness
across licenses is exact because of the read model's unique index (migration 0007).
"""

from __future__ import annotations

import multiprocessing
import secrets
import threading
from collections.abc import Callable
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import UUID
from uuid import uuid4

import pytest

from ledger.application import LedgerApplication
from ledger.commands import machines
from ledger.domain.errors import DomainError
from projections.inline import InlineProjections
from projections.machines import ReadModelFingerprints
from tests.support.machines import IssuedLicense
from tests.support.machines import context
from tests.support.machines import create_policy
from tests.support.machines import event_types
from tests.support.machines import issue_license

PEPPER = secrets.token_bytes(32)
PARALLEL = 32
SEATS = 5
PROCESSES = 4


@pytest.fixture(scope="module")
def database(fresh_database: Callable[[], str]) -> str:
    return fresh_database()


def new_ledger(database: str, pool_size: int) -> LedgerApplication:
    return LedgerApplication(database, pool_size=pool_size, projector=InlineProjections())


@pytest.fixture(scope="module")
def ledger(database: str) -> Iterator[LedgerApplication]:
    app = new_ledger(database, PARALLEL)
    yield app
    app.close()


def try_activate(
    ledger: LedgerApplication, tenant_id: UUID, license_id: UUID, fingerprint: str
) -> str:
    """The outcome of one activation: CREATED, or the refusal's code."""
    ctx = context(tenant_id)
    try:
        machines.activate_machine(
            ledger,
            ctx,
            license_id=license_id,
            machine_id=uuid4(),
            details=machines.MachineDetails(fingerprint=fingerprint),
            fingerprints=ReadModelFingerprints(ledger, tenant_id),
        )
    except DomainError as e:
        return str(e.code)
    return "CREATED"


def active_machines(ledger: LedgerApplication, lic: IssuedLicense) -> int:
    with ledger.reading(lic.tenant_id) as curs:
        row = curs.execute(
            "SELECT count(*) AS n FROM machines WHERE license_id = %s AND active",
            (lic.license_id,),
        ).fetchone()
    assert row is not None
    return int(row["n"])


def fingerprints(n: int) -> list[str]:
    return [f"fp-{i:03d}-{secrets.token_hex(4)}" for i in range(n)]


def assert_exactly_seats(
    ledger: LedgerApplication, lic: IssuedLicense, outcomes: list[str]
) -> None:
    assert outcomes.count("CREATED") == SEATS, outcomes
    assert set(outcomes) == {"CREATED", "MACHINE_LIMIT_EXCEEDED"}
    assert active_machines(ledger, lic) == SEATS
    history = event_types(ledger, lic.tenant_id, lic.license_id)
    assert history.count("license.machine_activated") == SEATS
    assert history.count("license.limit_reached") == PARALLEL - SEATS


def test_parallel_threads_take_exactly_the_free_seats(ledger: LedgerApplication) -> None:
    lic = issue_license(ledger, PEPPER, uuid4(), settings={"max_machines": SEATS})
    start = threading.Barrier(PARALLEL)

    def one(fingerprint: str) -> str:
        start.wait()
        return try_activate(ledger, lic.tenant_id, lic.license_id, fingerprint)

    with ThreadPoolExecutor(PARALLEL) as pool:
        outcomes = list(pool.map(one, fingerprints(PARALLEL)))

    assert_exactly_seats(ledger, lic, outcomes)


def _process_worker(
    database: str, lic: tuple[str, str], batch: list[str], start: Any, results: Any
) -> None:
    """One process: its own application (and pool), a thread per activation."""
    tenant_id, license_id = UUID(lic[0]), UUID(lic[1])
    ledger = new_ledger(database, len(batch))
    threads_ready = threading.Barrier(len(batch), action=start.wait)

    def one(fingerprint: str) -> str:
        threads_ready.wait()
        return try_activate(ledger, tenant_id, license_id, fingerprint)

    try:
        with ThreadPoolExecutor(len(batch)) as pool:
            for outcome in pool.map(one, batch):
                results.put(outcome)
    finally:
        ledger.close()


def test_parallel_processes_take_exactly_the_free_seats(
    database: str, ledger: LedgerApplication
) -> None:
    lic = issue_license(ledger, PEPPER, uuid4(), settings={"max_machines": SEATS})
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Barrier(PROCESSES)
    results = spawn.Queue()
    prints = fingerprints(PARALLEL)
    per_process = PARALLEL // PROCESSES
    processes = [
        spawn.Process(
            target=_process_worker,
            args=(
                database,
                (str(lic.tenant_id), str(lic.license_id)),
                prints[i * per_process : (i + 1) * per_process],
                start,
                results,
            ),
        )
        for i in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in range(PARALLEL)]
    for process in processes:
        process.join(timeout=60)

    assert [p.exitcode for p in processes] == [0] * PROCESSES
    assert_exactly_seats(ledger, lic, outcomes)


def test_one_fingerprint_racing_onto_many_licenses_lands_once(ledger: LedgerApplication) -> None:
    tenant_id = uuid4()
    policy = create_policy(ledger, tenant_id, {"fingerprint_uniqueness": "PER_ACCOUNT"})
    licenses = [issue_license(ledger, PEPPER, tenant_id, policy=policy) for _ in range(16)]
    fingerprint = "fp-shared-" + secrets.token_hex(4)
    start = threading.Barrier(len(licenses))

    def one(lic: IssuedLicense) -> str:
        start.wait()
        return try_activate(ledger, tenant_id, lic.license_id, fingerprint)

    with ThreadPoolExecutor(len(licenses)) as pool:
        outcomes = list(pool.map(one, licenses))

    assert outcomes.count("CREATED") == 1, outcomes
    assert set(outcomes) == {"CREATED", "FINGERPRINT_TAKEN"}
    assert sum(active_machines(ledger, lic) for lic in licenses) == 1
