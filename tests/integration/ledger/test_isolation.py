"""Tenant isolation: random tenants, random appends; under tenant A every read path
returns A's rows only."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from uuid import UUID
from uuid import uuid4

import psycopg
import pytest
from eventsourcing.application import AggregateNotFoundError
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from ledger.application import LedgerApplication
from ledger.domain.license import License
from ledger.store.log import read_log
from ledger.store.log import verify_chain
from ledger.store.tenancy import tenant_scope
from tests.integration.ledger.helpers import app_connection
from tests.integration.ledger.helpers import as_tenant
from tests.integration.ledger.helpers import new_license
from tests.integration.ledger.helpers import toggle
from tests.integration.ledger.helpers import whole_log

# Hypothesis imports mypy_extensions while reporting a falsifying example; under
# `filterwarnings = error` that warning would hide the report behind an INTERNALERROR.
pytestmark = pytest.mark.filterwarnings(
    "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning"
)


@pytest.fixture(scope="module")
def conn(database: str) -> Iterator[psycopg.Connection[Any]]:
    with app_connection(database) as conn:
        yield conn


@dataclass
class Tenant:
    id: UUID = field(default_factory=uuid4)
    streams: dict[int, License] = field(default_factory=dict)
    events: set[tuple[UUID, int]] = field(default_factory=set)  # (stream, version)
    snapshots: set[tuple[UUID, int]] = field(default_factory=set)


# (tenant index, stream slot, events in this save, take a snapshot afterwards)
appends = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 2), st.integers(1, 3), st.booleans()),
    min_size=1,
    max_size=12,
)


def _append(app: LedgerApplication, tenants: list[Tenant], op: tuple[int, int, int, bool]) -> None:
    index, slot, count, snapshot = op
    tenant = tenants[index % len(tenants)]
    license_ = tenant.streams.get(slot)
    if license_ is None:
        license_ = tenant.streams[slot] = new_license()
        count -= 1
    for _ in range(count):
        toggle(license_)
    first = license_.version - len(license_.pending_events) + 1
    tenant.events.update((license_.id, v) for v in range(first, license_.version + 1))
    app.save_in(tenant.id, license_, metadata={"tenant": str(tenant.id)})
    if snapshot:
        with tenant_scope(tenant.id):
            app.take_snapshot(license_.id)
        tenant.snapshots.add((license_.id, license_.version))


def _select_all(conn: psycopg.Connection[Any], tenant_id: UUID, table: str) -> list[Any]:
    with as_tenant(conn, tenant_id) as curs:
        curs.execute(f"SELECT * FROM {table}")
        return curs.fetchall()


def _check_reads_of(
    app: LedgerApplication, conn: psycopg.Connection[Any], me: Tenant, others: list[Tenant]
) -> None:
    n = len(me.events)
    with tenant_scope(me.id):
        for license_ in me.streams.values():
            loaded = app.repository.get(license_.id)
            assert loaded.version == license_.version
            assert loaded.stored_status == license_.stored_status
        for other in others:
            for license_ in other.streams.values():
                with pytest.raises(AggregateNotFoundError):
                    app.repository.get(license_.id)
                assert list(app.events.get(license_.id)) == []
                assert list(app.snapshots.get(license_.id)) == []
        notifications = app.recorder.select_notifications(None, limit=1000)
        assert [x.id for x in notifications] == list(range(1, n + 1))
        assert {(x.originator_id, x.originator_version) for x in notifications} == me.events
        assert app.recorder.max_notification_id() == n

    logged = read_log(conn, me.id, after=0, limit=1000)
    assert [e.position for e in logged] == list(range(1, n + 1))
    assert {e.tenant_id for e in logged} == {me.id}
    assert {(e.stream_id, e.version) for e in logged} == me.events
    assert {e.metadata["tenant"] for e in logged} == {str(me.id)}
    assert verify_chain(logged) is None
    assert read_log(conn, me.id, after=n) == []

    rows = _select_all(conn, me.id, "events")
    assert {(r["tenant_id"], r["stream_id"], r["version"]) for r in rows} == {
        (me.id, s, v) for s, v in me.events
    }
    assert len(rows) == n
    heads = _select_all(conn, me.id, "log_heads")
    assert [(h["tenant_id"], h["position"]) for h in heads] == [(me.id, n)]
    assert heads[0]["hash"] == logged[-1].hash
    snaps = _select_all(conn, me.id, "snapshots")
    assert {(s["tenant_id"], s["stream_id"], s["version"]) for s in snaps} == {
        (me.id, s, v) for s, v in me.snapshots
    }
    assert [t["tenant_id"] for t in _select_all(conn, me.id, "tenants")] == [me.id]
    # Asking for another tenant's rows explicitly, under my tenant, finds nothing.
    for other in others:
        with as_tenant(conn, me.id) as curs:
            curs.execute("SELECT count(*) AS n FROM events WHERE tenant_id = %s", (other.id,))
            assert curs.fetchone() == {"n": 0}


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(tenant_count=st.integers(2, 4), ops=appends)
def test_every_read_under_a_tenant_returns_only_its_rows(
    app: LedgerApplication, conn: psycopg.Connection[Any], tenant_count: int, ops: list[Any]
) -> None:
    tenants = [Tenant() for _ in range(tenant_count)]
    for tenant in tenants:
        with as_tenant(conn, tenant.id) as curs:
            curs.execute(
                "INSERT INTO tenants (tenant_id, account_id, environment) VALUES (%s, %s, 'test')",
                (tenant.id, uuid4()),
            )
    for op in ops:
        _append(app, tenants, op)
    for me in tenants:
        others = [t for t in tenants if t is not me]
        if me.events:
            _check_reads_of(app, conn, me, others)
        else:
            with tenant_scope(me.id):
                assert app.recorder.max_notification_id() is None
                assert app.recorder.select_notifications(None, limit=10) == []
            assert read_log(conn, me.id) == []
            for table in ("events", "log_heads", "snapshots"):
                assert _select_all(conn, me.id, table) == []


def test_reading_another_tenants_log_by_id_needs_that_tenant(
    app: LedgerApplication, conn: psycopg.Connection[Any]
) -> None:
    """A raw query under tenant A naming B's id finds only A's rows (RLS, not WHERE)."""
    a, b = uuid4(), uuid4()
    app.save_in(a, new_license())
    app.save_in(b, new_license(), new_license())
    # Asked for B, read_log scopes its transaction to B: B's rows, never A's.
    assert len(whole_log(conn, a)) == 1
    assert {e.tenant_id for e in whole_log(conn, b)} == {b}
    assert len(whole_log(conn, b)) == 2
    with as_tenant(conn, a) as curs:
        curs.execute("SELECT count(*) AS n FROM events WHERE tenant_id = ANY(%s)", ([a, b],))
        assert curs.fetchone() == {"n": 1}
