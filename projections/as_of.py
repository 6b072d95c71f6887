"""A license as it stood at a past moment (`GET /licenses/{id}?asOf=`), from the ledger.

The license stream (machines included) and its policy's stream are each replayed up to
the moment, then shaped by the very functions that shape the live read model
(`license_document`, `policy_document`, `machine_document`, `license_view`), so the
document has the live shape field for field; its `status` is derived at that moment.

"Up to the moment" is a prefix of the stream: the events before the first one that
occurred after it. (A command's time is taken when its request arrives; one that retried
after losing a race may carry a time earlier than the event it lost to, and was not in
the ledger yet at its own time.) A snapshot stands in for all but the last events, so
the cost does not grow with the stream's length beyond one index scan.

Everything is read in one transaction: the version each stream had reached, its latest
snapshot up to there (a cache the library writes every 100 license events), and the
events after it.

What the ledger does not hold cannot be shown: a machine's ALIVE pings are not events,
so `lastHeartbeatAt` is the last heartbeat an event recorded.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from typing import cast
from uuid import UUID

import orjson
from eventsourcing.domain import CanMutateProtocol
from eventsourcing.persistence import StoredEvent
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.rows import tuple_row

from ledger.application import LedgerApplication
from ledger.domain.license import License
from ledger.domain.policy import Policy
from ledger.store.replay import REPLAY_COLUMNS
from ledger.store.replay import apply_row
from projections.catalogue import policy_document
from projections.licenses import license_document
from projections.licenses import license_view
from projections.licenses import machine_document

_SNAPSHOT = """
SELECT version, topic, state FROM snapshots
WHERE tenant_id = %s AND stream_id = %s AND version <= %s ORDER BY version DESC LIMIT 1
"""
_EVENTS = f"""
SELECT {REPLAY_COLUMNS} FROM events
WHERE tenant_id = %s AND stream_id = %s AND version > %s AND version <= %s ORDER BY version
"""  # noqa: S608 (fixed text)
_VERSION_AT = """
SELECT
    (SELECT version FROM events
     WHERE tenant_id = %(t)s AND stream_id = %(s)s AND occurred_at > %(at)s
     ORDER BY version LIMIT 1) AS first_after,
    (SELECT max(version) FROM events WHERE tenant_id = %(t)s AND stream_id = %(s)s) AS last
"""


def version_at(curs: Cursor[DictRow], tenant_id: UUID, stream_id: UUID, at: datetime) -> int:
    """How many events of the stream had occurred by `at` (as a prefix); 0: none."""
    row = curs.execute(_VERSION_AT, {"t": tenant_id, "s": stream_id, "at": at}).fetchone()
    if row is None or row["last"] is None:
        return 0
    first_after = row["first_after"]
    return int(row["last"]) if first_after is None else int(first_after) - 1


def license_as_of(
    app: LedgerApplication, tenant_id: UUID, license_id: UUID, at: datetime
) -> dict[str, Any] | None:
    """The license document at `at`; None if it did not exist then (or was deleted)."""
    with app.reading(tenant_id) as curs:
        version = version_at(curs, tenant_id, license_id, at)
        license_ = _replayed(app, curs, tenant_id, license_id, version) if version else None
        if not isinstance(license_, License) or license_.deleted:
            return None
        policy_id = UUID(license_.policy_id)
        # A policy created "after" its license (clock skew): its first state.
        policy_version = max(version_at(curs, tenant_id, policy_id, at), 1)
        policy = _replayed(app, curs, tenant_id, policy_id, policy_version)
    if not isinstance(policy, Policy):
        return None
    machines = sorted(license_.active_machines, key=lambda m: (m.created_at, m.id))
    view = license_view(
        license_document(license_),
        policy_document(policy),
        [machine_document(m) for m in machines],
        at,
    )
    # The live document is stored as jsonb: compare like with like.
    document: dict[str, Any] = orjson.loads(orjson.dumps(view))
    return document


def _replayed(
    app: LedgerApplication, curs: Cursor[DictRow], tenant_id: UUID, stream_id: UUID, version: int
) -> Any:
    """The stream's aggregate at `version`: its latest snapshot up to there, then the
    events after it, read in the caller's transaction (the repository would open four)."""
    snapshot = curs.execute(_SNAPSHOT, (tenant_id, stream_id, version), prepare=True).fetchone()
    aggregate, after = None, 0
    if snapshot is not None and app.snapshots is not None:
        stored = StoredEvent(
            originator_id=stream_id,
            originator_version=snapshot["version"],
            topic=snapshot["topic"],
            state=bytes(snapshot["state"]),
        )
        event = app.snapshots.mapper.to_domain_event(stored)
        aggregate, after = cast("CanMutateProtocol[Any]", event).mutate(None), snapshot["version"]
    with curs.connection.cursor(row_factory=tuple_row) as rows:  # what a replay folds
        rows.execute(_EVENTS, (tenant_id, stream_id, after, version), prepare=True)
        for row in rows:
            aggregate = apply_row(aggregate, row)
    return aggregate
