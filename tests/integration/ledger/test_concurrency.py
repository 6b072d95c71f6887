"""Concurrent writers: optimistic concurrency on one stream, and gapless, ordered,
exactly-once tailing of every tenant's log while many writers append."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from dataclasses import field
from datetime import timedelta
from uuid import UUID
from uuid import uuid4

import pytest

from ledger.application import LedgerApplication
from ledger.domain.license import License
from ledger.store.log import LoggedEvent
from ledger.store.log import read_log
from ledger.store.log import verify_chain
from ledger.store.recorder import ConcurrencyConflictError
from ledger.store.tenancy import tenant_scope
from tests.integration.ledger.helpers import AT
from tests.integration.ledger.helpers import app_connection
from tests.integration.ledger.helpers import as_tenant
from tests.integration.ledger.helpers import new_license
from tests.integration.ledger.helpers import toggle
from tests.integration.ledger.helpers import whole_log

THREADS = 8
COMMANDS_PER_THREAD = 25

TENANTS = 8
WRITERS_PER_TENANT = 8
SAVES_PER_WRITER = 320
EVENTS_PER_SAVE = 1  # 8 x 8 x 320 x 1 = 20,480 events


APP_POOL_SIZE = TENANTS * WRITERS_PER_TENANT // 4


def test_racing_commands_on_one_stream_each_get_one_version(
    app: LedgerApplication, database: str
) -> None:
    tenant_id = uuid4()
    license_ = new_license()
    app.save_in(tenant_id, license_)
    attempts = Counter[str]()
    attempts_lock = threading.Lock()
    start = threading.Barrier(THREADS)

    def renew_by_one_day() -> int:
        with attempts_lock:
            attempts["commands"] += 1
        with tenant_scope(tenant_id):
            loaded: License = app.repository.get(license_.id)
        loaded.renew(duration_days=1, at=AT)
        try:
            app.save_in(tenant_id, loaded)
        except ConcurrencyConflictError:
            with attempts_lock:
                attempts["conflicts"] += 1
            raise
        return loaded.version

    def worker() -> list[int]:
        start.wait()
        return [app.execute(tenant_id, renew_by_one_day) for _ in range(COMMANDS_PER_THREAD)]

    with ThreadPoolExecutor(THREADS) as pool:
        acknowledged = [
            v for f in [pool.submit(worker) for _ in range(THREADS)] for v in f.result()
        ]

    total = THREADS * COMMANDS_PER_THREAD
    # Every command got its own version: none lost, none duplicated, no gaps.
    assert sorted(acknowledged) == list(range(2, total + 2))
    with app_connection(database) as conn, as_tenant(conn, tenant_id) as curs:
        curs.execute(
            "SELECT version, event_type FROM events WHERE stream_id = %s ORDER BY version",
            (license_.id,),
        )
        rows = curs.fetchall()
    assert [r["version"] for r in rows] == list(range(1, total + 2))
    assert Counter(r["event_type"] for r in rows) == {
        "license.created": 1,
        "license.renewed": total,
    }
    with tenant_scope(tenant_id):
        final: License = app.repository.get(license_.id)
    assert final.version == total + 1
    assert final.expires_at == AT + timedelta(days=total)
    # Every attempt either committed or lost a race (and was retried by execute).
    assert attempts["commands"] == total + attempts["conflicts"]


@dataclass
class TenantLog:
    id: UUID = field(default_factory=uuid4)
    lock: threading.Lock = field(default_factory=threading.Lock)
    acknowledged: set[tuple[UUID, int]] = field(default_factory=set)  # (stream, version)


def _writer(app: LedgerApplication, tenant: TenantLog) -> None:
    license_ = new_license()
    for save in range(SAVES_PER_WRITER):
        for _ in range(EVENTS_PER_SAVE - (1 if save == 0 else 0)):
            toggle(license_)
        first = license_.version - len(license_.pending_events) + 1
        app.save_in(tenant.id, license_)
        with tenant.lock:
            tenant.acknowledged.update((license_.id, v) for v in range(first, license_.version + 1))


def _tail_reader(
    database: str, tenant: TenantLog, writers_done: threading.Event
) -> tuple[list[LoggedEvent], int]:
    """Poll `read_log(after=last)` while writers run, then drain; (events, pages read
    while writers were still running)."""
    seen: list[LoggedEvent] = []
    last = 0
    live_pages = 0
    with app_connection(database) as conn:
        while True:
            done = writers_done.is_set()  # read before polling: then drain once more
            page = read_log(conn, tenant.id, after=last, limit=500)
            if page:
                positions = [e.position for e in page]
                # Strictly increasing, no gaps, starting right after what we had.
                assert positions == list(range(last + 1, last + 1 + len(page))), positions
                assert {e.tenant_id for e in page} == {tenant.id}
                seen.extend(page)
                last = positions[-1]
                live_pages += not done
            elif done:
                return seen, live_pages
            else:
                time.sleep(0.002)


@pytest.mark.slow
def test_tail_readers_see_every_event_of_their_tenant_once_in_order(
    app: LedgerApplication, database: str
) -> None:
    tenants = [TenantLog() for _ in range(TENANTS)]
    writers_done = threading.Event()
    with ThreadPoolExecutor(TENANTS) as readers_pool:
        readers = [readers_pool.submit(_tail_reader, database, t, writers_done) for t in tenants]
        try:
            with ThreadPoolExecutor(TENANTS * WRITERS_PER_TENANT) as writers_pool:
                writers = [
                    writers_pool.submit(_writer, app, tenant)
                    for _ in range(WRITERS_PER_TENANT)
                    for tenant in tenants
                ]
                for writer in writers:
                    writer.result()
        finally:
            writers_done.set()
        results = [reader.result() for reader in readers]
    seen = {tenant.id: events for tenant, (events, _) in zip(tenants, results, strict=True)}
    # The readers really tailed concurrent writers (not just drained at the end).
    assert sum(live_pages for _, live_pages in results) > TENANTS

    total = sum(len(t.acknowledged) for t in tenants)
    assert total == TENANTS * WRITERS_PER_TENANT * SAVES_PER_WRITER * EVENTS_PER_SAVE
    assert total >= 20_000
    with app_connection(database) as conn:
        for tenant in tenants:
            events = seen[tenant.id]
            n = len(tenant.acknowledged)
            assert [e.position for e in events] == list(range(1, n + 1))
            assert {(e.stream_id, e.version) for e in events} == tenant.acknowledged
            assert len({e.event_id for e in events}) == n
            assert verify_chain(events) is None
            assert verify_chain(whole_log(conn, tenant.id)) is None
            with tenant_scope(tenant.id):
                assert app.recorder.max_notification_id() == n
