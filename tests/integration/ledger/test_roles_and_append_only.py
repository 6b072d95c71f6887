"""The app role: no superuser, no BYPASSRLS, sees nothing without a tenant; events are
append-only for the app role (no grant) and for the owner (trigger)."""

from __future__ import annotations

from typing import Any
from uuid import UUID
from uuid import uuid4

import psycopg
import pytest

from ledger.application import LedgerApplication
from ledger.store.factory import APP_ROLE
from tests.integration.ledger.helpers import app_connection
from tests.integration.ledger.helpers import as_tenant
from tests.integration.ledger.helpers import new_license
from tests.integration.ledger.helpers import owner_connection
from tests.integration.ledger.helpers import toggle

TENANT_TABLES = ("events", "log_heads", "snapshots", "tenants")


@pytest.fixture(scope="module")
def tenant(app: LedgerApplication, database: str) -> UUID:
    """A tenant with a registry row, a snapshot and a few events."""
    tenant_id = uuid4()
    license_ = new_license()
    toggle(license_)
    toggle(license_)
    app.save_in(tenant_id, license_)
    with app_connection(database) as conn, as_tenant(conn, tenant_id) as curs:
        curs.execute(
            "INSERT INTO tenants (tenant_id, account_id, environment) VALUES (%s, %s, 'live')",
            (tenant_id, uuid4()),
        )
        curs.execute(
            "INSERT INTO snapshots (tenant_id, stream_id, version, topic, state)"
            " VALUES (%s, %s, 1, 'test', '\\x00')",
            (tenant_id, license_.id),
        )
    return tenant_id


def test_app_role_is_neither_superuser_nor_bypassing_rls(database: str) -> None:
    with owner_connection(database) as conn:
        row = conn.execute(
            "SELECT rolsuper, rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname = %s",
            (APP_ROLE,),
        ).fetchone()
    assert row == {"rolsuper": False, "rolbypassrls": False, "rolcanlogin": False}


def test_pooled_connections_run_as_the_app_role(app: LedgerApplication) -> None:
    with app.factory.datastore.get_connection() as conn:
        row = conn.execute("SELECT current_user AS who").fetchone()
    assert row is not None
    assert row["who"] == APP_ROLE


@pytest.mark.parametrize("statement", ["RESET ROLE", "RESET ALL", "DISCARD ALL"])
def test_resetting_the_session_stays_in_the_app_role(database: str, statement: str) -> None:
    # The role comes from the connection's startup options, so it is the session default.
    with app_connection(database) as conn:
        conn.execute(statement)
        row = conn.execute("SELECT current_user AS who").fetchone()
    assert row == {"who": APP_ROLE}


@pytest.mark.usefixtures("tenant")
def test_no_tenant_set_sees_no_rows(database: str) -> None:
    with owner_connection(database) as owner:
        for table in TENANT_TABLES:
            count = owner.execute(f"SELECT count(*) AS n FROM {table}").fetchone()
            assert count is not None
            assert count["n"] > 0, f"the owner should see the fixture rows of {table}"
    with app_connection(database) as conn:
        for table in TENANT_TABLES:
            row = conn.execute(f"SELECT count(*) AS n FROM {table}").fetchone()
            assert row == {"n": 0}, table


def test_no_rows_once_the_tenant_transaction_has_ended(database: str, tenant: UUID) -> None:
    with app_connection(database) as conn:
        with as_tenant(conn, tenant) as curs:
            for table in TENANT_TABLES:
                curs.execute(f"SELECT count(*) AS n FROM {table}")
                row = curs.fetchone()
                assert row is not None
                assert row["n"] > 0, table
        # The setting was transaction-local: now '' (not NULL), and still no rows.
        setting = conn.execute("SELECT current_setting('app.tenant', true) AS t").fetchone()
        assert setting == {"t": ""}
        for table in TENANT_TABLES:
            row = conn.execute(f"SELECT count(*) AS n FROM {table}").fetchone()
            assert row == {"n": 0}, table


def test_pooled_connection_sees_no_rows_outside_a_tenant_scope(
    app: LedgerApplication, tenant: UUID
) -> None:
    app.save_in(tenant, new_license())  # the pool has just served this tenant
    with app.factory.datastore.get_connection() as conn:
        for table in TENANT_TABLES:
            row = conn.execute(f"SELECT count(*) AS n FROM {table}").fetchone()
            assert row is not None
            assert row["n"] == 0, table


def _insert_event_sql() -> str:
    return (
        "INSERT INTO events (tenant_id, position, stream_id, stream_type, version, event_id,"
        " event_type, schema_version, data, metadata, occurred_at, recorded_at, hash)"
        " VALUES (%s, 999999, %s, 'license', 1, %s, 'license.created', 1, '{}', '{}',"
        " now(), now(), '\\x00')"
    )


def test_insert_without_a_tenant_is_refused(database: str) -> None:
    with app_connection(database) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            conn.execute(_insert_event_sql(), (uuid4(), uuid4(), uuid4()))
        for table, sql in (
            ("log_heads", "INSERT INTO log_heads VALUES (%s, 1, '\\x00')"),
            ("snapshots", "INSERT INTO snapshots VALUES (%s, gen_random_uuid(), 1, 't', '')"),
            ("tenants", "INSERT INTO tenants VALUES (%s, gen_random_uuid(), 'live')"),
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql, (uuid4(),))
            assert table


def test_insert_for_another_tenant_is_refused(database: str, tenant: UUID) -> None:
    with (
        app_connection(database) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"),
        as_tenant(conn, tenant) as curs,
    ):
        curs.execute(_insert_event_sql(), (uuid4(), uuid4(), uuid4()))


@pytest.mark.parametrize(
    "statement",
    ["UPDATE events SET data = '{\"x\": 1}'", "DELETE FROM events", "TRUNCATE events"],
)
def test_app_role_cannot_change_events(database: str, tenant: UUID, statement: str) -> None:
    with (
        app_connection(database) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"),
        as_tenant(conn, tenant) as curs,
    ):
        curs.execute(statement)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE events SET data = '{\"x\": 1}' WHERE tenant_id = %s",
        "DELETE FROM events WHERE tenant_id = %s",
        "DELETE FROM events WHERE tenant_id = %s AND position = 1",
    ],
)
def test_owner_cannot_update_or_delete_events(database: str, tenant: UUID, statement: str) -> None:
    with owner_connection(database) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            conn.execute(statement, (tenant,))
        conn.rollback()
        row = conn.execute(
            "SELECT count(*) AS n, min(data::text) AS d FROM events WHERE tenant_id = %s",
            (tenant,),
        ).fetchone()
    assert row is not None
    assert row["n"] >= 3
    assert row["d"] != '{"x": 1}'


def test_owner_cannot_truncate_events(database: str, tenant: UUID) -> None:
    with owner_connection(database) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="TRUNCATE"):
            conn.execute("TRUNCATE events")
        conn.rollback()
        row = conn.execute(
            "SELECT count(*) AS n FROM events WHERE tenant_id = %s", (tenant,)
        ).fetchone()
    assert row is not None
    assert row["n"] >= 3


def _partition_of(conn: psycopg.Connection[Any], tenant: UUID) -> str:
    row = conn.execute(
        "SELECT tableoid::regclass::text AS part FROM events WHERE tenant_id = %s LIMIT 1",
        (tenant,),
    ).fetchone()
    assert row is not None
    return str(row["part"])


@pytest.mark.parametrize("statement", ["UPDATE {} SET data = '{{}}'", "DELETE FROM {}"])
def test_owner_cannot_bypass_the_trigger_through_a_partition(
    database: str, tenant: UUID, statement: str
) -> None:
    with owner_connection(database) as conn:
        partition = _partition_of(conn, tenant)
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            conn.execute(statement.format(partition))
        conn.rollback()


def test_app_role_has_no_access_to_partitions(database: str, tenant: UUID) -> None:
    with owner_connection(database) as owner:
        partition = _partition_of(owner, tenant)
    with app_connection(database) as conn:
        for statement in ("SELECT * FROM {}", "DELETE FROM {}", "TRUNCATE {}"):
            with (
                pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"),
                as_tenant(conn, tenant) as curs,
            ):
                curs.execute(statement.format(partition))


def test_owner_cannot_truncate_a_partition(database: str, tenant: UUID) -> None:
    with owner_connection(database) as conn:
        partition = _partition_of(conn, tenant)
        try:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"TRUNCATE {partition}")
        finally:
            conn.rollback()  # never keep the truncation, whatever happened
