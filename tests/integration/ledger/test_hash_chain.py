"""The per-tenant hash chain over the log, and what each stored row holds (stable event
names, schema version, metadata)."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID
from uuid import uuid4

import psycopg
import pytest

from ledger.application import LedgerApplication
from ledger.domain.product import Product
from ledger.store.log import ChainBreak
from ledger.store.log import verify_chain
from ledger.store.tenancy import tenant_scope
from tests.integration.ledger.helpers import AT
from tests.integration.ledger.helpers import app_connection
from tests.integration.ledger.helpers import new_license
from tests.integration.ledger.helpers import owner_connection
from tests.integration.ledger.helpers import toggle
from tests.integration.ledger.helpers import whole_log

EVENTS = 12


@pytest.fixture(scope="module")
def tenant(app: LedgerApplication) -> UUID:
    """A tenant whose log holds EVENTS events over two streams, in several saves."""
    tenant_id = uuid4()
    first, second = new_license(), new_license()
    app.save_in(tenant_id, first, second)
    for i in range(EVENTS - 2):
        license_ = first if i % 3 else second
        toggle(license_)
        if i % 2:
            toggle(license_)
        app.save_in(tenant_id, license_, metadata={"requestId": f"r{i}"})
        if license_.version + 2 > EVENTS:
            break
    return tenant_id


def test_chain_holds_after_appends(app: LedgerApplication, database: str, tenant: UUID) -> None:
    other = uuid4()
    app.save_in(other, new_license())
    with app_connection(database) as conn:
        events = whole_log(conn, tenant)
        assert [e.position for e in events] == list(range(1, len(events) + 1))
        assert len(events) >= EVENTS
        assert verify_chain(events) is None
        assert verify_chain(whole_log(conn, other)) is None
        # A suffix verifies from its predecessor's hash.
        assert verify_chain(events[5:], previous_hash=events[4].hash, after=5) is None
        head = conn.execute(
            "SELECT position, hash FROM log_heads WHERE tenant_id = %s", (tenant,)
        ).fetchone()
        assert head is None  # no tenant set on this connection: RLS hides the head
        with conn.transaction():
            conn.execute("SELECT set_config('app.tenant', %s, true)", (str(tenant),))
            head = conn.execute("SELECT position, hash FROM log_heads").fetchone()
    assert head == {"position": events[-1].position, "hash": events[-1].hash}


def _disable_append_only(conn: psycopg.Connection[object], how: str) -> None:
    if how == "replica":
        conn.execute("SET LOCAL session_replication_role = replica")
    else:
        conn.execute("ALTER TABLE events DISABLE TRIGGER events_append_only")


TAMPERING = {
    "data": "data = data || '{\"tampered\": true}'",
    "metadata": 'metadata = \'{"requestId": "forged"}\'',
    "event_type": "event_type = 'license.revoked'",
    "schema_version": "schema_version = 2",
    "version": "version = version + 1000",
    "stream_id": "stream_id = gen_random_uuid()",
    "occurred_at": "occurred_at = occurred_at + interval '1 microsecond'",
    "recorded_at": "recorded_at = recorded_at - interval '1 second'",
    "hash": "hash = sha256(hash)",
}


@pytest.mark.parametrize("how", ["replica", "disable_trigger"])
@pytest.mark.parametrize("column", sorted(TAMPERING))
def test_altering_a_row_breaks_the_chain_at_its_position(
    database: str, tenant: UUID, column: str, how: str
) -> None:
    position = 7
    with owner_connection(database) as conn:
        try:
            _disable_append_only(conn, how)
            changed = conn.execute(
                f"UPDATE events SET {TAMPERING[column]} WHERE tenant_id = %s AND position = %s",
                (tenant, position),
            )
            assert changed.rowcount == 1
            assert verify_chain(whole_log(conn, tenant)) == ChainBreak(
                position, "hash does not match the recomputed link"
            )
        finally:
            conn.rollback()
        assert verify_chain(whole_log(conn, tenant)) is None


@pytest.mark.parametrize("how", ["replica", "disable_trigger"])
@pytest.mark.parametrize("position", [1, 6, EVENTS - 1])
def test_deleting_a_row_reports_a_position_gap(
    database: str, tenant: UUID, position: int, how: str
) -> None:
    with owner_connection(database) as conn:
        try:
            _disable_append_only(conn, how)
            deleted = conn.execute(
                "DELETE FROM events WHERE tenant_id = %s AND position = %s", (tenant, position)
            )
            assert deleted.rowcount == 1
            assert verify_chain(whole_log(conn, tenant)) == ChainBreak(
                position, f"position {position + 1} found instead"
            )
        finally:
            conn.rollback()
        assert verify_chain(whole_log(conn, tenant)) is None


def test_swapping_two_rows_breaks_the_chain(database: str, tenant: UUID) -> None:
    with owner_connection(database) as conn:
        try:
            _disable_append_only(conn, "replica")
            # Through a free position: the primary key is checked row by row.
            for old, new in ((3, -3), (4, 3), (-3, 4)):
                conn.execute(
                    "UPDATE events SET position = %s WHERE tenant_id = %s AND position = %s",
                    (new, tenant, old),
                )
            found = verify_chain(whole_log(conn, tenant))
            assert found is not None
            assert found.position == 3
        finally:
            conn.rollback()


def test_rows_hold_stable_names_schema_version_and_metadata(
    app: LedgerApplication, database: str
) -> None:
    tenant_id = uuid4()
    metadata = {"actor": {"type": "user", "id": str(uuid4())}, "requestId": "r1"}
    license_ = new_license()
    license_.suspend(at=AT)
    license_.reinstate(at=AT)
    license_.renew(expires_at=AT + timedelta(days=30), at=AT)
    app.save_in(tenant_id, license_, metadata=metadata)
    product = Product.create(id=uuid4(), name="Product", code="product", at=AT)
    app.save_in(tenant_id, product, metadata={"requestId": "r2"})
    with owner_connection(database) as conn:
        rows = conn.execute(
            "SELECT stream_type, event_type, schema_version, metadata, version"
            " FROM events WHERE tenant_id = %s ORDER BY position",
            (tenant_id,),
        ).fetchall()
    assert [(r["stream_type"], r["event_type"], r["version"]) for r in rows] == [
        ("license", "license.created", 1),
        ("license", "license.suspended", 2),
        ("license", "license.reinstated", 3),
        ("license", "license.renewed", 4),
        ("product", "product.created", 1),
    ]
    for row in rows:
        assert row["schema_version"] == 1
        assert ":" not in row["event_type"]
        assert not row["event_type"].startswith(("ledger", "eventsourcing"))
    assert [r["metadata"] for r in rows] == [metadata] * 4 + [{"requestId": "r2"}]
    with tenant_scope(tenant_id):
        loaded = app.repository.get(license_.id)
    assert loaded.version == 4
    assert loaded.expires_at == AT + timedelta(days=30)


@pytest.mark.parametrize("command", ["delete_product", "increment_usage"])
def test_events_declared_on_base_classes_are_stored_under_stable_names(
    app: LedgerApplication, database: str, command: str
) -> None:
    tenant_id = uuid4()
    if command == "delete_product":
        aggregate = Product.create(id=uuid4(), name="Product", code="product", at=AT)
        aggregate.delete(at=AT)
        expected = "product.deleted"
    else:
        aggregate = new_license()
        aggregate.increment_usage(increment=1, max_uses=None, at=AT)
        expected = "license.usage_incremented"
    app.save_in(tenant_id, aggregate)
    with owner_connection(database) as conn:
        row = conn.execute(
            "SELECT event_type FROM events WHERE tenant_id = %s AND version = 2", (tenant_id,)
        ).fetchone()
    assert row == {"event_type": expected}
