"""Long license streams: snapshots every 100 events, per tenant, invisible to others."""

from __future__ import annotations

from typing import Any
from uuid import UUID
from uuid import uuid4

import pytest
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.application import Repository
from eventsourcing.application import project_aggregate

from ledger.application import LedgerApplication
from ledger.domain.license import License
from ledger.store.log import verify_chain
from ledger.store.repository import OneTripRepository
from ledger.store.tenancy import tenant_scope
from tests.integration.ledger.helpers import app_connection
from tests.integration.ledger.helpers import as_tenant
from tests.integration.ledger.helpers import new_license
from tests.integration.ledger.helpers import owner_connection
from tests.integration.ledger.helpers import toggle
from tests.integration.ledger.helpers import whole_log

VERSIONS = 251  # snapshots at 100 and 200, and 51 events after the last one


@pytest.fixture(scope="module")
def long_license(app: LedgerApplication) -> tuple[UUID, License]:
    tenant_id = uuid4()
    license_ = new_license()
    app.save_in(tenant_id, license_)
    while license_.version < VERSIONS:
        # Mostly single-event saves, some batches: the snapshot versions are crossed
        # inside batches too.
        for _ in range(1 if license_.version < 180 else min(3, VERSIONS - license_.version)):
            toggle(license_)
        app.save_in(tenant_id, license_)
    return tenant_id, license_


def replay(app: LedgerApplication, license_id: UUID, version: int | None = None) -> Any:
    """The aggregate folded from its events alone (no snapshot)."""
    aggregate = None
    for event in app.events.get(license_id, lte=version):
        aggregate = event.mutate(aggregate)
    return aggregate


def test_long_stream_loads_to_the_replayed_state(
    app: LedgerApplication, long_license: tuple[UUID, License]
) -> None:
    tenant_id, license_ = long_license
    with tenant_scope(tenant_id):
        loaded = app.repository.get(license_.id)
        replayed = replay(app, license_.id)
        assert [s.originator_version for s in app.snapshots.get(license_.id)] == [100, 200]
        at_150 = app.repository.get(license_.id, version=150)
        replayed_150 = replay(app, license_.id, 150)
    assert loaded.version == replayed.version == license_.version == VERSIONS
    assert vars(loaded) == vars(replayed)
    assert loaded.stored_status == license_.stored_status
    assert loaded.key_hash == license_.key_hash
    assert at_150.version == 150
    assert vars(at_150) == vars(replayed_150)


def test_snapshot_rows_belong_to_the_tenant(
    database: str, long_license: tuple[UUID, License]
) -> None:
    tenant_id, license_ = long_license
    with owner_connection(database) as conn:
        rows = conn.execute(
            "SELECT tenant_id, version FROM snapshots WHERE stream_id = %s ORDER BY version",
            (license_.id,),
        ).fetchall()
    assert rows == [
        {"tenant_id": tenant_id, "version": 100},
        {"tenant_id": tenant_id, "version": 200},
    ]
    with app_connection(database) as conn, as_tenant(conn, tenant_id) as curs:
        curs.execute("SELECT version FROM snapshots WHERE stream_id = %s", (license_.id,))
        assert [r["version"] for r in curs.fetchall()] == [100, 200]
        assert verify_chain(whole_log(conn, tenant_id)) is None


def test_other_tenant_cannot_see_the_snapshots_or_the_stream(
    app: LedgerApplication, database: str, long_license: tuple[UUID, License]
) -> None:
    _, license_ = long_license
    other = uuid4()
    app.save_in(other, new_license())
    with tenant_scope(other):
        assert list(app.snapshots.get(license_.id)) == []
        assert list(app.events.get(license_.id)) == []
        with pytest.raises(AggregateNotFoundError):
            app.repository.get(license_.id)
    with app_connection(database) as conn, as_tenant(conn, other) as curs:
        curs.execute("SELECT count(*) AS n FROM snapshots WHERE stream_id = %s", (license_.id,))
        assert curs.fetchone() == {"n": 0}
        curs.execute("SELECT count(*) AS n FROM snapshots")
        assert curs.fetchone() == {"n": 0}


def test_snapshot_is_not_taken_for_short_streams(app: LedgerApplication, database: str) -> None:
    tenant_id = uuid4()
    license_ = new_license()
    for _ in range(98):
        toggle(license_)
    app.save_in(tenant_id, license_)
    with owner_connection(database) as conn:
        row = conn.execute(
            "SELECT count(*) AS n FROM snapshots WHERE tenant_id = %s", (tenant_id,)
        ).fetchone()
    assert row == {"n": 0}
    toggle(license_)
    toggle(license_)
    app.save_in(tenant_id, license_)  # crosses version 100 inside one batch
    with owner_connection(database) as conn:
        rows = conn.execute(
            "SELECT version FROM snapshots WHERE tenant_id = %s", (tenant_id,)
        ).fetchall()
    assert rows == [{"version": 100}]


def test_the_one_trip_load_equals_the_library_load(
    app: LedgerApplication, long_license: tuple[UUID, License]
) -> None:
    """`load_stream` (migration 0014) against the library's two reads, and RLS kept."""
    tenant_id, license_ = long_license
    assert isinstance(app.repository, OneTripRepository)
    with tenant_scope(tenant_id):
        ours = app.repository.get(license_.id)
        library = Repository._reconstruct_aggregate(
            app.repository, license_.id, None, project_aggregate
        )
    assert vars(ours) == vars(library)
    with tenant_scope(uuid4()), pytest.raises(AggregateNotFoundError):
        app.repository.get(license_.id)
