"""The analytics projection (API.md §4 Analytics): counters a tailing consumer keeps.

Per tenant and UTC day: machine activations and validation results, added from the
tenant's log batch by batch. The batch's counters and the tenant's position move in one
transaction, with the position row locked (SKIP LOCKED: several workers share tenants
without counting anything twice), so each event is counted exactly once.

License and machine figures are not counted here: they are states, read at request time
from the inline read models (indexed per-tenant counts), which are always current.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta
from typing import Any
from typing import Final
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import DictRow

from ledger.domain.codes import HeartbeatStatus
from ledger.domain.codes import LicenseStatus

CONSUMER: Final = "analytics"
ACTIVATED: Final = "license.machine_activated"
VALIDATION_SUCCESS: Final = "validation.success"
VALIDATION_FAILED: Final = "validation.failed"
_COUNTED: Final = {
    ACTIVATED: "activations",
    VALIDATION_SUCCESS: "validations_success",
    VALIDATION_FAILED: "validations_failed",
}
TREND_DAYS: Final = 7


@dataclass(frozen=True)
class Behind:
    tenant_id: UUID
    position: int


def tenants_behind(curs: Cursor[DictRow], limit: int) -> list[Behind]:
    """Across tenants, through the SECURITY DEFINER function of migration 0011."""
    rows = curs.execute(
        'SELECT tenant_id, "position" FROM analytics_tenants_behind(%s)', (limit,)
    ).fetchall()
    return [Behind(r["tenant_id"], int(r["position"])) for r in rows]


def _lock_position(curs: Cursor[DictRow], tenant_id: UUID) -> int | None:
    """The tenant's position, locked for this transaction; None if another holds it."""
    curs.execute(
        "INSERT INTO analytics_positions (tenant_id) VALUES (%s) ON CONFLICT DO NOTHING",
        (tenant_id,),
    )
    row = curs.execute(
        "SELECT position FROM analytics_positions WHERE tenant_id = %s FOR UPDATE SKIP LOCKED",
        (tenant_id,),
    ).fetchone()
    return None if row is None else int(row["position"])


def consume(curs: Cursor[DictRow], tenant_id: UUID, *, limit: int) -> int:
    """Count the next `limit` events of the tenant set on `curs`; returns events read."""
    position = _lock_position(curs, tenant_id)
    if position is None:
        return 0
    rows = curs.execute(
        "SELECT position, event_type, occurred_at FROM events"
        " WHERE tenant_id = %s AND position > %s ORDER BY position LIMIT %s",
        (tenant_id, position, limit),
        prepare=True,
    ).fetchall()
    if not rows:
        return 0
    counts: Counter[tuple[date, str]] = Counter()
    for row in rows:
        column = _COUNTED.get(row["event_type"])
        if column is not None:
            counts[(row["occurred_at"].astimezone(UTC).date(), column)] += 1
    for (day, column), n in sorted(counts.items()):
        curs.execute(
            f"INSERT INTO analytics_daily (tenant_id, day, {column}) VALUES (%s, %s, %s)"  # noqa: S608
            f" ON CONFLICT (tenant_id, day) DO UPDATE"
            f" SET {column} = analytics_daily.{column} + EXCLUDED.{column}",
            (tenant_id, day, n),
        )
    curs.execute(
        "UPDATE analytics_positions SET position = %s, updated_at = now() WHERE tenant_id = %s",
        (int(rows[-1]["position"]), tenant_id),
    )
    return len(rows)


_LICENSES = """
SELECT count(*) AS total,
    count(*) FILTER (WHERE status = 'active' AND (expires_at IS NULL OR expires_at > %(now)s))
        AS active,
    count(*) FILTER (WHERE status = 'active' AND expires_at <= %(now)s) AS expired,
    count(*) FILTER (WHERE status = 'suspended') AS suspended,
    count(*) FILTER (WHERE status = 'revoked') AS revoked,
    count(*) FILTER (WHERE status = 'banned') AS banned
FROM licenses WHERE NOT deleted
"""

# A machine past its heartbeat deadline is DEAD on the wire before the timer records it
# (projections/machines.py); NOT_STARTED machines are neither alive nor dead.
_MACHINES = """
SELECT count(*) AS total,
    count(*) FILTER (WHERE m.doc->>'heartbeatStatus' = %(alive)s
                     AND (h.deadline_at IS NULL OR h.deadline_at > %(now)s)) AS alive,
    count(*) FILTER (WHERE m.doc->>'heartbeatStatus' = %(dead)s
                     OR (m.doc->>'heartbeatStatus' = %(alive)s AND h.deadline_at <= %(now)s))
        AS dead
FROM machines m
LEFT JOIN machine_heartbeats h ON h.tenant_id = m.tenant_id AND h.machine_id = m.id
WHERE m.active
"""


def analytics(curs: Cursor[DictRow], now: datetime) -> dict[str, Any]:
    """The wire document of `GET /analytics` for the tenant set on `curs`."""
    licenses = curs.execute(_LICENSES, {"now": now}).fetchone()
    machines = curs.execute(
        _MACHINES,
        {"now": now, "alive": str(HeartbeatStatus.ALIVE), "dead": str(HeartbeatStatus.DEAD)},
    ).fetchone()
    assert licenses is not None
    assert machines is not None
    today = now.astimezone(UTC).date()
    first = today - timedelta(days=TREND_DAYS - 1)
    rows = curs.execute(
        "SELECT day, activations FROM analytics_daily WHERE day >= %s AND day <= %s",
        (first, today),
    ).fetchall()
    per_day = {r["day"]: int(r["activations"]) for r in rows}
    totals = curs.execute(
        "SELECT COALESCE(sum(validations_success), 0) AS ok,"
        " COALESCE(sum(validations_failed), 0) AS failed FROM analytics_daily"
    ).fetchone()
    assert totals is not None
    ok, failed = int(totals["ok"]), int(totals["failed"])
    return {
        "licenses": {
            "total": licenses["total"],
            str(LicenseStatus.ACTIVE): licenses["active"],
            str(LicenseStatus.EXPIRED): licenses["expired"],
            str(LicenseStatus.SUSPENDED): licenses["suspended"],
            str(LicenseStatus.REVOKED): licenses["revoked"],
            str(LicenseStatus.BANNED): licenses["banned"],
        },
        "machines": {
            "total": machines["total"],
            "alive": machines["alive"],
            "dead": machines["dead"],
        },
        "activations": {
            "trend": [
                {"date": day.isoformat(), "count": per_day.get(day, 0)}
                for day in (first + timedelta(days=i) for i in range(TREND_DAYS))
            ]
        },
        "validations": {"total": ok + failed, "successful": ok, "failed": failed},
    }
