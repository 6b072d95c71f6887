"""Shared helpers for the event store's integration tests (real PostgreSQL, no mocks)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from datetime import datetime
from typing import Any
from uuid import UUID
from uuid import uuid4

import psycopg
from psycopg.rows import dict_row

from ledger.domain.codes import LicenseStatus
from ledger.domain.license import License
from ledger.store.factory import APP_ROLE
from ledger.store.log import LoggedEvent
from ledger.store.log import read_log

# Events declared on `License` itself (Created, Suspended, Reinstated, Renewed): their
# stable names are registered by `LedgerApplication`.
AT = datetime(2030, 1, 1, tzinfo=UTC)


def app_connection(url: str) -> psycopg.Connection[Any]:
    """A connection that runs as the app role (no BYPASSRLS), like the pool's."""
    return psycopg.connect(
        url, options=f"-c role={APP_ROLE}", autocommit=True, row_factory=dict_row
    )


def owner_connection(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url, row_factory=dict_row)


@contextmanager
def as_tenant(conn: psycopg.Connection[Any], tenant_id: UUID) -> Iterator[psycopg.Cursor[Any]]:
    """One transaction in which RLS sees `tenant_id` (transaction-local setting)."""
    with conn.transaction(), conn.cursor() as curs:
        curs.execute("SELECT set_config('app.tenant', %s, true)", (str(tenant_id),))
        yield curs


def new_license(*, license_id: UUID | None = None, at: datetime = AT) -> License:
    return License.create(
        id=license_id or uuid4(),
        product_id=uuid4(),
        policy_id=uuid4(),
        key_hash=secrets.token_hex(32),
        at=at,
    )


def toggle(license_: License, *, at: datetime = AT) -> None:
    """One event: suspend an active license, reinstate a suspended one."""
    if license_.stored_status is LicenseStatus.ACTIVE:
        license_.suspend(at=at)
    else:
        license_.reinstate(at=at)


def whole_log(conn: psycopg.Connection[Any], tenant_id: UUID) -> list[LoggedEvent]:
    """Every event of the tenant, in position order, read page by page."""
    events: list[LoggedEvent] = []
    while True:
        page = read_log(conn, tenant_id, after=events[-1].position if events else 0, limit=1000)
        if not page:
            return events
        events.extend(page)
