"""The ledger as the API shows it: a license's history and the environment's feed.

Both read `events` directly (the log is the source of truth, and it is already indexed
for these reads) in the caller's tenant, under row-level security. Positions are the
tenant's log positions: gapless, in commit order, the order of the hash chain.

An entry on the wire: `{id, type, sequence, occurredAt, recordedAt, actor: {type, id},
requestId, streamType, streamId, version, data}`, where `sequence` is the position and
`data` is the event's data with camelCase keys (user `metadata` objects verbatim) and
without stored secrets: key hashes, ciphertexts and sealed keys stay in the ledger
(the export carries them, for the chain).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import DictRow

from projections.wire import iso_ms

VALIDATION_STREAM = "validation"
# Stored field names that hold secrets at rest (even hashed or encrypted).
_SECRET_FIELD = re.compile(r"hash|secret|seed|sealed|encrypted")
_COLUMNS = (
    "position, event_id, event_type, stream_type, stream_id, version, data, metadata,"
    " occurred_at, recorded_at"
)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def public_data(value: Any) -> Any:
    """Event data for the wire: camelCase keys, secrets left out, `metadata` verbatim."""
    if isinstance(value, list):
        return [public_data(item) for item in value]
    if not isinstance(value, dict):
        return value
    shown: dict[str, Any] = {}
    for key, item in value.items():
        if _SECRET_FIELD.search(key):
            continue
        shown[_camel(key)] = item if key == "metadata" else public_data(item)
    return shown


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def event_document(row: DictRow) -> dict[str, Any]:
    metadata = row["metadata"] or {}
    actor = metadata.get("actor") or {}
    return {
        "id": str(row["event_id"]),
        "type": row["event_type"],
        "sequence": row["position"],
        "occurredAt": iso_ms(row["occurred_at"]),
        "recordedAt": iso_ms(row["recorded_at"]),
        # Events appended by the system itself (timers, migrations) carry no actor.
        "actor": {"type": actor.get("type") or "system", "id": actor.get("id")},
        # Validations are recorded in batches: each carries its request id in its data.
        "requestId": metadata.get("requestId") or _text(row["data"].get("request_id")),
        "streamType": row["stream_type"],
        "streamId": str(row["stream_id"]),
        "version": row["version"],
        "data": public_data(row["data"]),
    }


@dataclass(frozen=True)
class EventPage:
    items: list[dict[str, Any]]
    has_more: bool
    # Where the next read starts: the last position returned, or (when nothing more
    # matched up to the head read) the head itself, so filtered reads move on too.
    last_position: int


def license_stream_exists(curs: Cursor[DictRow], license_id: UUID) -> bool:
    """Whether the tenant's log holds a license with this id (deleted ones included)."""
    row = curs.execute(
        "SELECT 1 FROM events WHERE stream_id = %s AND version = 1 AND stream_type = 'license'",
        (license_id,),
        prepare=True,
    ).fetchone()
    return row is not None


def license_history(
    curs: Cursor[DictRow], tenant_id: UUID, license_id: UUID, *, after: int, limit: int
) -> EventPage:
    """The license stream (machines, checkouts and usage included) and its validations,
    oldest first, after position `after`."""
    # Two index scans merged in position order (an OR would defeat both indexes). In one
    # stream, version order is position order: ordering by version walks the stream's
    # own index instead of the whole tenant's log.
    rows = curs.execute(
        f"(SELECT {_COLUMNS} FROM events WHERE tenant_id = %(t)s AND stream_id = %(l)s"  # noqa: S608
        "   AND position > %(after)s ORDER BY version LIMIT %(n)s)"
        f" UNION ALL (SELECT {_COLUMNS} FROM events WHERE tenant_id = %(t)s"
        "   AND stream_type = 'validation' AND data->>'license_id' = %(ls)s"
        "   AND position > %(after)s ORDER BY position LIMIT %(n)s)"
        " ORDER BY position LIMIT %(n)s",
        {"t": tenant_id, "l": license_id, "ls": str(license_id), "after": after, "n": limit + 1},
        prepare=True,
    ).fetchall()
    items = [event_document(r) for r in rows[:limit]]
    return EventPage(items, len(rows) > limit, items[-1]["sequence"] if items else after)


def _type_filter(types: Sequence[str]) -> tuple[str, list[Any]]:
    if not types:
        return "", []
    exact = [t for t in types if not t.endswith(".*")]
    prefixes = [t[:-1] + "%" for t in types if t.endswith(".*")]
    return " AND (event_type = ANY(%s) OR event_type LIKE ANY(%s))", [exact, prefixes]


def feed(
    curs: Cursor[DictRow], tenant_id: UUID, *, after: int, limit: int, types: Sequence[str] = ()
) -> EventPage:
    """The tenant's log after `after`, in position order, optionally only some types.

    The head is read first: every position up to it has committed (positions are
    allocated and committed in order per tenant), so the page can never skip an event
    that commits later, and a page that ends empty may jump the cursor to the head.
    """
    head = curs.execute(
        "SELECT position FROM log_heads WHERE tenant_id = %s", (tenant_id,), prepare=True
    ).fetchone()
    upto = 0 if head is None else int(head["position"])
    where, params = _type_filter(types)
    rows = curs.execute(
        f"SELECT {_COLUMNS} FROM events WHERE tenant_id = %s"  # noqa: S608 (fixed text)
        f" AND position > %s AND position <= %s{where} ORDER BY position LIMIT %s",
        [tenant_id, after, upto, *params, limit + 1],
    ).fetchall()
    items = [event_document(r) for r in rows[:limit]]
    has_more = len(rows) > limit
    last = items[-1]["sequence"] if has_more else max(upto, after)
    return EventPage(items, has_more, last)
