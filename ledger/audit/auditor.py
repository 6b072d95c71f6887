"""Reading every tenant's log, as the auditor role.

The API and workers can never read across tenants (row-level security, forced). The
auditor's command-line tools must: migration 0009 creates `licentric_auditor`, a NOLOGIN
role that the migrating owner may `SET ROLE` to, with a SELECT-only policy over every
tenant's `events`, `log_heads` and `tenants`, and plain SELECT grants elsewhere (so the
read models stay tenant by tenant). It has no write grant on any table: whatever runs as
it cannot change the ledger or a live read model.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import class_row
from psycopg.rows import dict_row

from ledger.store.hashchain import GENESIS_HASH
from ledger.store.log import LoggedEvent
from ledger.store.replay import REPLAY_COLUMNS
from ledger.store.tenancy import set_transaction_tenant

AUDITOR_ROLE = "licentric_auditor"


@contextmanager
def auditor_role(conn: psycopg.Connection[Any]) -> Iterator[psycopg.Connection[Any]]:
    """The session runs as the auditor role until the block ends (autocommit connection)."""
    conn.execute(f"SET ROLE {AUDITOR_ROLE}")
    try:
        yield conn
    finally:
        conn.execute("RESET ROLE")


@dataclass(frozen=True)
class TenantHead:
    """A tenant's log head, and which account environment it is (when it is one)."""

    tenant_id: UUID
    position: int
    hash: bytes
    account_id: UUID | None
    environment: str | None
    # The newest stored position, read in the same snapshot as the head: never beyond
    # it unless rows were inserted behind the append path's back.
    last_stored: int = 0

    @property
    def label(self) -> str:
        if self.account_id is None:
            return str(self.tenant_id)
        return f"{self.tenant_id} (account {self.account_id}, {self.environment})"


_HEADS = """
SELECT h.tenant_id, h.position, h.hash, t.account_id, t.environment,
    COALESCE((SELECT max(e.position) FROM events e WHERE e.tenant_id = h.tenant_id), 0)
        AS last_stored
FROM log_heads h LEFT JOIN tenants t ON t.tenant_id = h.tenant_id
"""


def list_tenants(
    conn: psycopg.Connection[Any],
    *,
    account_id: UUID | None = None,
    environment: str | None = None,
    tenant_id: UUID | None = None,
) -> list[TenantHead]:
    """Every tenant with a log (or the chosen ones), as the auditor sees them."""
    where: list[str] = []
    params: list[Any] = []
    for column, value in (("t.account_id", account_id), ("t.environment", environment),
                          ("h.tenant_id", tenant_id)):  # fmt: skip
        if value is not None:
            where.append(f"{column} = %s")
            params.append(value)
    query = _HEADS + (" WHERE " + " AND ".join(where) if where else "")
    query += " ORDER BY t.account_id NULLS LAST, t.environment, h.tenant_id"
    with conn.transaction(), conn.cursor(row_factory=class_row(TenantHead)) as curs:
        curs.execute(query, params)
        heads = curs.fetchall()
    return [
        TenantHead(
            h.tenant_id, h.position, bytes(h.hash), h.account_id, h.environment, h.last_stored
        )
        for h in heads
    ]


def tenant_head(conn: psycopg.Connection[Any], tenant_id: UUID) -> TenantHead:
    """The tenant's head (position 0 and the genesis hash when it has no log)."""
    found = list_tenants(conn, tenant_id=tenant_id)
    return found[0] if found else TenantHead(tenant_id, 0, GENESIS_HASH, None, None)


_COLUMNS = (
    "tenant_id, position, stream_id, stream_type, version, event_id, event_type,"
    " schema_version, data, metadata, occurred_at, recorded_at, hash"
)


def read_log_until(
    conn: psycopg.Connection[Any], tenant_id: UUID, *, after: int, upto: int, limit: int
) -> list[LoggedEvent]:
    """Events of `tenant_id` with `after < position <= upto`, oldest first."""
    with conn.transaction(), conn.cursor(row_factory=class_row(LoggedEvent)) as curs:
        set_transaction_tenant(curs, tenant_id)
        curs.execute(
            f"SELECT {_COLUMNS} FROM events WHERE tenant_id = %s"  # noqa: S608 (fixed text)
            " AND position > %s AND position <= %s ORDER BY position LIMIT %s",
            (tenant_id, after, upto, limit),
        )
        return curs.fetchall()


def iter_log(
    conn: psycopg.Connection[Any], tenant_id: UUID, *, upto: int, page: int = 2000
) -> Iterator[list[LoggedEvent]]:
    """The tenant's log up to `upto`, page by page (each page one short transaction)."""
    after = 0
    while after < upto:
        events = read_log_until(conn, tenant_id, after=after, upto=upto, limit=page)
        if not events:
            return
        yield events
        after = events[-1].position


def stream_rows(conn: psycopg.Connection[Any], tenant_id: UUID, stream_id: UUID) -> list[Any]:
    """One stream's rows in version order, in the replay column order."""
    with conn.transaction(), conn.cursor() as curs:
        set_transaction_tenant(curs, tenant_id)
        curs.execute(
            f"SELECT {REPLAY_COLUMNS} FROM events"  # noqa: S608 (fixed text)
            " WHERE tenant_id = %s AND stream_id = %s ORDER BY version",
            (tenant_id, stream_id),
        )
        return curs.fetchall()


def account_tenants(conn: psycopg.Connection[Any], account_id: UUID) -> dict[str, UUID]:
    """The account's environments: {"live": tenant, "test": tenant}."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as curs:
        rows = curs.execute(
            "SELECT environment, tenant_id FROM tenants WHERE account_id = %s", (account_id,)
        ).fetchall()
    return {r["environment"]: r["tenant_id"] for r in rows}
