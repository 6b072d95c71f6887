"""The machines' last-seen rows (migration 0004): one per active machine.

A heartbeat ping is not an event (ARCHITECTURE.md §4). An ALIVE machine's ping only
moves its row (`touch`); the events that change the heartbeat state (first ping, death,
revival) are projected here from the license aggregate, in their own transaction. The
row's `deadline_at` (last ping, or activation, + the policy's interval; NULL when the
policy does not require heartbeats or the machine is already DEAD) is what the timer's
index walks.

These rows are operational state, not a pure read model: the time of an ALIVE ping is
in no event, so a rebuild from events keeps the latest ping already stored.
"""

from __future__ import annotations

from datetime import datetime
from datetime import timedelta
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import DictRow

from ledger.application import LedgerApplication
from ledger.domain.codes import HeartbeatStatus
from ledger.domain.license import License

# The ping recorded by an event and the one in the row: the later wins (a ping may
# have landed between the event's command and this projection).
_UPSERT = """
INSERT INTO machine_heartbeats AS h
    (tenant_id, machine_id, license_id, last_heartbeat_at, deadline_at)
VALUES (%(tenant)s, %(machine)s, %(license)s, %(seen)s::timestamptz,
    CASE WHEN %(due)s THEN GREATEST(%(seen)s::timestamptz, %(since)s) + %(interval)s END)
ON CONFLICT (tenant_id, machine_id) DO UPDATE SET
    license_id = EXCLUDED.license_id,
    last_heartbeat_at = GREATEST(h.last_heartbeat_at, EXCLUDED.last_heartbeat_at),
    deadline_at = CASE WHEN %(due)s THEN
        GREATEST(h.last_heartbeat_at, EXCLUDED.last_heartbeat_at, %(since)s) + %(interval)s END
WHERE h.last_heartbeat_at IS DISTINCT FROM GREATEST(h.last_heartbeat_at, EXCLUDED.last_heartbeat_at)
    OR h.deadline_at IS DISTINCT FROM (CASE WHEN %(due)s THEN
        GREATEST(h.last_heartbeat_at, EXCLUDED.last_heartbeat_at, %(since)s) + %(interval)s END)
"""

_POLICY = """
SELECT COALESCE((doc->>'requireHeartbeat')::boolean, false) AS required,
    COALESCE((doc->>'heartbeatIntervalMinutes')::integer, 60) AS minutes
FROM policies WHERE id = %s
"""

# An ALIVE machine's ping: the row moves, nothing else. The statement re-checks that
# the machine is still active, ALIVE and within its deadline; when it is not (first
# ping, DEAD, overdue, gone) the caller runs the command instead: a machine whose
# deadline passed is dead even if the timer has not recorded it yet.
_TOUCH = """
UPDATE machine_heartbeats h SET
    last_heartbeat_at = GREATEST(h.last_heartbeat_at, %(now)s),
    deadline_at = CASE WHEN COALESCE((p.doc->>'requireHeartbeat')::boolean, false)
        THEN %(now)s + make_interval(mins =>
            COALESCE((p.doc->>'heartbeatIntervalMinutes')::integer, 60)) END
FROM machines m
JOIN licenses l ON l.tenant_id = m.tenant_id AND l.id = m.license_id
JOIN policies p ON p.tenant_id = l.tenant_id AND p.id = l.policy_id
WHERE h.machine_id = %(machine)s
    AND (h.deadline_at IS NULL OR h.deadline_at > %(now)s)
    AND m.tenant_id = h.tenant_id AND m.id = h.machine_id AND m.active
    AND m.doc->>'heartbeatStatus' = 'ALIVE'
RETURNING h.machine_id
"""


def project_heartbeats(curs: Cursor[DictRow], tenant_id: UUID, license_: License) -> None:
    """One row per active machine of the license; deactivated machines lose theirs."""
    live = not license_.deleted
    active = [m for m in license_.machines if m.active and live]
    gone = [m.id for m in license_.machines if not (m.active and live)]
    if gone:
        curs.execute("DELETE FROM machine_heartbeats WHERE machine_id = ANY(%s)", (gone,))
    if not active:
        return
    policy = curs.execute(_POLICY, (UUID(license_.policy_id),), prepare=True).fetchone()
    required = bool(policy and policy["required"])
    interval = timedelta(minutes=policy["minutes"] if policy else 60)
    curs.executemany(
        _UPSERT,
        [
            {
                "tenant": tenant_id,
                "machine": machine.id,
                "license": license_.id,
                "seen": machine.last_heartbeat_at,
                "since": machine.created_at,
                "interval": interval,
                # A DEAD machine has nothing left to miss until a ping revives it.
                "due": required and machine.heartbeat_status != HeartbeatStatus.DEAD,
            }
            for machine in active
        ],
    )


def touch(curs: Cursor[DictRow], machine_id: UUID, now: datetime) -> bool:
    """Record an ALIVE machine's ping; False when it is not active, ALIVE and on time."""
    row = curs.execute(_TOUCH, {"machine": machine_id, "now": now}, prepare=True).fetchone()
    return row is not None


def deadline_of(curs: Cursor[DictRow], machine_id: UUID) -> datetime | None:
    """The machine's current heartbeat deadline (None: no row, or nothing due)."""
    row = curs.execute(
        "SELECT deadline_at FROM machine_heartbeats WHERE machine_id = %s", (machine_id,)
    ).fetchone()
    return None if row is None else row["deadline_at"]


def is_overdue(app: LedgerApplication, tenant_id: UUID, machine_id: UUID, now: datetime) -> bool:
    """Whether the machine's heartbeat deadline has passed (read in its own transaction)."""
    with app.reading(tenant_id) as curs:
        deadline = deadline_of(curs, machine_id)
    return deadline is not None and deadline <= now


def settle(curs: Cursor[DictRow], machine_id: UUID, now: datetime) -> None:
    """Take an overdue row the timer had nothing to record for out of the due index.

    (Already DEAD under KEEP_DEAD, the policy stopped requiring heartbeats, the license
    is gone.) A row a ping moved into the future is left alone.
    """
    curs.execute(
        "UPDATE machine_heartbeats SET deadline_at = NULL"
        " WHERE machine_id = %s AND deadline_at <= %s",
        (machine_id, now),
    )
