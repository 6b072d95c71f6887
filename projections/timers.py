"""What the timers need from the read models: due times, and finding what is due.

Projected with every license save (same transaction): the license's expiry due time
(`licenses.expiry_due_at`, migration 0006) and its machines' last-seen rows
(projections/heartbeats.py). The worker finds due items across tenants through the two
SECURITY DEFINER functions of migration 0006 (an index walk each, oldest first), then
handles each one in its own tenant.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import DictRow

from ledger.domain.license import License
from projections.heartbeats import project_heartbeats


@dataclass(frozen=True)
class DueHeartbeat:
    tenant_id: UUID
    machine_id: UUID
    license_id: UUID


@dataclass(frozen=True)
class DueExpiry:
    tenant_id: UUID
    license_id: UUID


def project_license_timers(curs: Cursor[DictRow], tenant_id: UUID, license_: License) -> None:
    due_at = license_.expiry_due_at
    curs.execute(
        "UPDATE licenses SET expiry_due_at = %s"
        " WHERE id = %s AND expiry_due_at IS DISTINCT FROM %s",
        (due_at, license_.id, due_at),
        prepare=True,
    )
    project_heartbeats(curs, tenant_id, license_)


def due_heartbeats(curs: Cursor[DictRow], now: datetime, limit: int) -> list[DueHeartbeat]:
    """Machines past their heartbeat deadline, in every tenant (no tenant needed)."""
    rows = curs.execute(
        "SELECT tenant_id, machine_id, license_id FROM due_heartbeat_deadlines(%s, %s)",
        (now, limit),
        prepare=True,
    ).fetchall()
    return [DueHeartbeat(r["tenant_id"], r["machine_id"], r["license_id"]) for r in rows]


def due_expiries(curs: Cursor[DictRow], now: datetime, limit: int) -> list[DueExpiry]:
    """Licenses whose expiry is due and not recorded yet, in every tenant."""
    rows = curs.execute(
        "SELECT tenant_id, license_id FROM due_license_expiries(%s, %s)",
        (now, limit),
        prepare=True,
    ).fetchall()
    return [DueExpiry(r["tenant_id"], r["license_id"]) for r in rows]


def settle_expiry(curs: Cursor[DictRow], license_id: UUID, now: datetime) -> None:
    """Take a due license the timer had nothing to record for out of the due index.

    (Already recorded, terminal or deleted: states the projection also maps to NULL;
    this only repairs a row projected before migration 0006.)
    """
    curs.execute(
        "UPDATE licenses SET expiry_due_at = NULL WHERE id = %s AND expiry_due_at <= %s",
        (license_id, now),
    )
