"""Reads of machines: the wire document of API.md §4 Machines, and fingerprint lookups.

A machine's document is projected with its license (projections/licenses.py); its
`lastHeartbeatAt` and `heartbeatStatus` are made fresh here from its last-seen row: an
ALIVE ping is in no event, and a machine past its deadline is DEAD on the wire before
the timer has recorded it (like a license's derived `expired`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import DictRow

from ledger.application import LedgerApplication
from ledger.domain.codes import HeartbeatStatus
from projections.queries import Page
from projections.queries import UnknownCursorError
from projections.wire import iso_ms

_SELECT = """
SELECT m.doc, m.license_id, h.last_heartbeat_at, h.deadline_at
FROM machines m
LEFT JOIN machine_heartbeats h ON h.tenant_id = m.tenant_id AND h.machine_id = m.id
WHERE m.active
"""


@dataclass(frozen=True)
class MachineRow:
    license_id: UUID
    document: dict[str, Any]  # the wire document, fresh at the time it was read


def machine_view(
    doc: dict[str, Any], last_seen: datetime | None, deadline: datetime | None, now: datetime
) -> dict[str, Any]:
    view = dict(doc)
    recorded = doc.get("lastHeartbeatAt")
    seen = [t for t in (last_seen, recorded and datetime.fromisoformat(recorded)) if t]
    view["lastHeartbeatAt"] = iso_ms(max(seen)) if seen else None
    if deadline is not None and deadline <= now:
        view["heartbeatStatus"] = str(HeartbeatStatus.DEAD)
    return view


def _row(row: DictRow, now: datetime) -> MachineRow:
    return MachineRow(
        row["license_id"],
        machine_view(row["doc"], row["last_heartbeat_at"], row["deadline_at"], now),
    )


def get_machine(curs: Cursor[DictRow], machine_id: UUID, now: datetime) -> MachineRow | None:
    """An active machine of the tenant in scope, else None (deactivated: gone)."""
    row = curs.execute(_SELECT + " AND m.id = %s", (machine_id,), prepare=True).fetchone()
    return None if row is None else _row(row, now)


def list_machines(
    curs: Cursor[DictRow],
    *,
    cursor: UUID | None,
    limit: int,
    now: datetime,
    license_id: UUID | None = None,
) -> Page:
    """Active machines in (createdAt, id) order, optionally of one license."""
    query = _SELECT
    params: list[Any] = []
    if license_id is not None:
        query += " AND m.license_id = %s"
        params.append(license_id)
    if cursor is not None:
        after = curs.execute(
            "SELECT created_at, id FROM machines WHERE id = %s", (cursor,)
        ).fetchone()
        if after is None:
            raise UnknownCursorError(str(cursor))
        query += " AND (m.created_at, m.id) > (%s, %s)"
        params += [after["created_at"], after["id"]]
    query += " ORDER BY m.created_at, m.id LIMIT %s"
    rows = curs.execute(query, [*params, limit + 1]).fetchall()
    return Page([_row(r, now).document for r in rows[:limit]], has_more=len(rows) > limit)


def fingerprint_in_use(
    curs: Cursor[DictRow], fingerprint: str, *, license_id: UUID, policy_id: UUID | None
) -> bool:
    """Whether an active machine of ANOTHER license has `fingerprint`: of a license of
    `policy_id`, or of any license of the environment when `policy_id` is None."""
    query = (
        "SELECT 1 FROM machines m JOIN licenses l ON l.tenant_id = m.tenant_id"
        " AND l.id = m.license_id"
        " WHERE m.active AND m.fingerprint = %s AND m.license_id <> %s"
    )
    params: list[Any] = [fingerprint, license_id]
    if policy_id is not None:
        query += " AND l.policy_id = %s"
        params.append(policy_id)
    return curs.execute(query + " LIMIT 1", params).fetchone() is not None


class ReadModelFingerprints:
    """`ledger.commands.machines.FingerprintRegistry` over the machines read model."""

    def __init__(self, app: LedgerApplication, tenant_id: UUID) -> None:
        self._app = app
        self._tenant_id = tenant_id

    def in_use_elsewhere(
        self, fingerprint: str, *, license_id: UUID, policy_id: UUID | None
    ) -> bool:
        with self._app.reading(self._tenant_id) as curs:
            return fingerprint_in_use(curs, fingerprint, license_id=license_id, policy_id=policy_id)
