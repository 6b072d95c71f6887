"""Delivery rows: claiming and completing attempts, the delivery log, and re-sending.

States: `pending` (due at `next_attempt_at`), `in_flight` (claimed under a lease),
`delivered`, `failed` (the schedule ran out, or 410), `skipped` (created while the
endpoint was disabled; `recover` can send it later) and `superseded` (replaced by a
`recover` copy before it was sent).

Order per (endpoint, order key): a delivery is claimable only when no delivery of the
same endpoint and key with a smaller `seq` is still pending or in flight. `seq` comes
from the tenant's outbox head row, locked by every writer of deliveries, so a smaller
seq can never commit after a larger one has been seen. A claim is a short transaction
(FOR UPDATE SKIP LOCKED, lease, commit); the HTTP request runs with no transaction
open; the outcome is recorded only if the claim token still matches, so a worker whose
lease ran out cannot overwrite the attempt that replaced it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from psycopg import Cursor
from psycopg.rows import DictRow

from ledger.domain.codes import WebhookEventType
from projections.queries import Page
from projections.queries import UnknownCursorError
from projections.webhook_events import render_envelope
from projections.webhook_outbox import OutboxHead
from projections.webhook_outbox import advance_head
from projections.webhook_outbox import lock_head
from projections.wire import iso_ms

RESPONSE_EXCERPT_BYTES = 2048
OPEN_STATES = ("pending", "in_flight")


@dataclass(frozen=True)
class Claimed:
    tenant_id: UUID
    id: UUID
    endpoint_id: UUID
    order_key: UUID
    message_id: str
    body: bytes
    attempt: int
    url: str
    encrypted_secret: str
    token: UUID


@dataclass(frozen=True)
class AttemptResult:
    """What one attempt observed; `state` and `retry_in` are the worker's decision."""

    state: str  # delivered | pending | failed
    retry_in: float | None
    http_status: int | None
    latency_ms: int | None
    response: str | None
    error: str | None


def due_tenants(curs: Cursor[DictRow], limit: int) -> list[UUID]:
    rows = curs.execute("SELECT tenant_id FROM webhook_due_tenants(%s)", (limit,)).fetchall()
    return [r["tenant_id"] for r in rows]


# MATERIALIZED and driving the lock from `due`: the plan must not depend on table
# statistics (a fresh outbox has none, and a per-row scan of the open rows is quadratic).
_CLAIM = """
WITH heads AS MATERIALIZED (
    -- The first open delivery of each (endpoint, order key) queue: only it may go.
    SELECT DISTINCT ON (d.endpoint_id, d.order_key)
        d.id, d.endpoint_id, d.seq, d.state, d.next_attempt_at, d.lease_until
    FROM webhook_deliveries d
    WHERE d.tenant_id = %(tenant)s AND d.state IN ('pending', 'in_flight')
      AND (%(endpoint)s::uuid IS NULL OR (d.endpoint_id = %(endpoint)s AND d.order_key = %(key)s))
    ORDER BY d.endpoint_id, d.order_key, d.seq
), due AS MATERIALIZED (
    SELECT h.id FROM heads h
    JOIN webhook_endpoints w ON w.tenant_id = %(tenant)s AND w.id = h.endpoint_id
        AND w.enabled AND NOT w.deleted
    WHERE (h.state = 'pending' AND h.next_attempt_at <= now())
       OR (h.state = 'in_flight' AND h.lease_until < now())
), candidates AS (
    -- Re-checked on the locked row version; rows another worker is claiming are skipped.
    SELECT d.id FROM due u
    JOIN webhook_deliveries d ON d.tenant_id = %(tenant)s AND d.id = u.id
    WHERE ((d.state = 'pending' AND d.next_attempt_at <= now())
           OR (d.state = 'in_flight' AND d.lease_until < now()))
    ORDER BY d.seq
    LIMIT %(limit)s
    FOR UPDATE OF d SKIP LOCKED
), claimed AS (
    UPDATE webhook_deliveries d SET state = 'in_flight', attempts = d.attempts + 1,
        lease_until = now() + make_interval(secs => %(lease)s), claim_token = %(token)s,
        updated_at = now()
    FROM candidates c WHERE d.tenant_id = %(tenant)s AND d.id = c.id
    RETURNING d.id, d.endpoint_id, d.order_key, d.message_id, d.body, d.attempts
), started AS (
    INSERT INTO webhook_attempts (tenant_id, delivery_id, number)
    SELECT %(tenant)s, id, attempts FROM claimed
)
SELECT c.id, c.endpoint_id, c.order_key, c.message_id, c.body, c.attempts, w.url, w.encrypted_secret
FROM claimed c JOIN webhook_endpoints w ON w.tenant_id = %(tenant)s AND w.id = c.endpoint_id
"""


def claim(
    curs: Cursor[DictRow],
    tenant_id: UUID,
    *,
    limit: int,
    lease_seconds: float,
    token: UUID,
    queue: tuple[UUID, UUID] | None = None,
) -> list[Claimed]:
    """Claim up to `limit` due deliveries of the tenant (commit before sending).

    `queue` = (endpoint, order key) limits the claim to that one queue: the next
    delivery of a license right after its predecessor was recorded.
    """
    endpoint, key = queue if queue is not None else (None, None)
    params = {"tenant": tenant_id, "limit": limit, "lease": lease_seconds, "token": token,
              "endpoint": endpoint, "key": key}  # fmt: skip
    rows = curs.execute(_CLAIM, params).fetchall()
    return [
        Claimed(
            tenant_id=tenant_id,
            id=r["id"],
            endpoint_id=r["endpoint_id"],
            order_key=r["order_key"],
            message_id=r["message_id"],
            body=bytes(r["body"]),
            attempt=int(r["attempts"]),
            url=r["url"],
            encrypted_secret=r["encrypted_secret"],
            token=token,
        )
        for r in rows
    ]


def record_attempt(curs: Cursor[DictRow], claimed: Claimed, result: AttemptResult) -> bool:
    """Store the attempt and move the delivery on; False if the claim was lost."""
    curs.execute(
        "UPDATE webhook_attempts SET finished_at = now(), http_status = %s, latency_ms = %s,"
        " response = %s, error = %s WHERE tenant_id = %s AND delivery_id = %s AND number = %s",
        (
            result.http_status,
            result.latency_ms,
            result.response,
            result.error,
            claimed.tenant_id,
            claimed.id,
            claimed.attempt,
        ),
    )
    updated = curs.execute(
        "UPDATE webhook_deliveries SET state = %(state)s,"
        " next_attempt_at = CASE WHEN %(retry)s::float8 IS NULL THEN NULL"
        "   ELSE now() + make_interval(secs => %(retry)s::float8) END,"
        " lease_until = NULL, claim_token = NULL, last_status = %(status)s,"
        " last_error = %(error)s, updated_at = now(),"
        " delivered_at = CASE WHEN %(state)s = 'delivered' THEN now() END"
        " WHERE tenant_id = %(tenant)s AND id = %(id)s AND claim_token = %(token)s"
        " AND state = 'in_flight'",
        {
            "state": result.state,
            "retry": result.retry_in,
            "status": result.http_status,
            "error": result.error,
            "tenant": claimed.tenant_id,
            "id": claimed.id,
            "token": claimed.token,
        },
    )
    return updated.rowcount == 1


# The delivery log (GET /webhooks/{id}/deliveries).

_DELIVERY_SELECT = """
SELECT d.id, d.endpoint_id, d.message_id, d.event_type, d.event_position, d.license_id,
    d.state, d.attempts, d.next_attempt_at, d.delivered_at, d.last_status, d.redelivery_of,
    d.body, d.created_at, d.updated_at,
    COALESCE((SELECT jsonb_agg(jsonb_build_object(
        'number', a.number, 'startedAt', a.started_at, 'finishedAt', a.finished_at,
        'httpStatus', a.http_status, 'latencyMs', a.latency_ms, 'response', a.response,
        'error', a.error) ORDER BY a.number)
      FROM webhook_attempts a WHERE a.tenant_id = d.tenant_id AND a.delivery_id = d.id),
      '[]'::jsonb) AS attempt_log
FROM webhook_deliveries d
"""


def _iso_db(value: str | None) -> str | None:
    # jsonb renders timestamptz as ISO text with an offset.
    return None if value is None else iso_ms(datetime.fromisoformat(value))


def delivery_document(row: DictRow) -> dict[str, Any]:
    attempts = [
        {
            "number": a["number"],
            "startedAt": _iso_db(a["startedAt"]),
            "finishedAt": _iso_db(a["finishedAt"]),
            "httpStatus": a["httpStatus"],
            "latencyMs": a["latencyMs"],
            "response": a["response"],
            "error": a["error"] if a["finishedAt"] is not None else "interrupted",
        }
        for a in row["attempt_log"]
    ]
    return {
        "id": str(row["id"]),
        "webhookId": str(row["endpoint_id"]),
        "eventId": row["message_id"],
        "type": row["event_type"],
        "sequence": row["event_position"] or 0,
        "licenseId": None if row["license_id"] is None else str(row["license_id"]),
        "status": row["state"],
        "attemptCount": row["attempts"],
        "attempts": attempts,
        "lastHttpStatus": row["last_status"],
        "nextAttemptAt": iso_ms(row["next_attempt_at"]) if row["state"] == "pending" else None,
        "deliveredAt": iso_ms(row["delivered_at"]),
        "redeliveryOf": None if row["redelivery_of"] is None else str(row["redelivery_of"]),
        "payload": orjson.loads(bytes(row["body"])),
        "createdAt": iso_ms(row["created_at"]),
        "updatedAt": iso_ms(row["updated_at"]),
    }


def get_delivery(
    curs: Cursor[DictRow], endpoint_id: UUID, delivery_id: UUID
) -> dict[str, Any] | None:
    row = curs.execute(
        _DELIVERY_SELECT + " WHERE d.endpoint_id = %s AND d.id = %s", (endpoint_id, delivery_id)
    ).fetchone()
    return None if row is None else delivery_document(row)


def list_deliveries(
    curs: Cursor[DictRow],
    endpoint_id: UUID,
    *,
    cursor: UUID | None,
    limit: int,
    status: str | None = None,
) -> Page:
    """Oldest first, in the order they are sent (`seq`)."""
    where = " WHERE d.endpoint_id = %s"
    params: list[Any] = [endpoint_id]
    if status is not None:
        where += " AND d.state = %s"
        params.append(status)
    if cursor is not None:
        row = curs.execute(
            "SELECT seq FROM webhook_deliveries WHERE endpoint_id = %s AND id = %s",
            (endpoint_id, cursor),
        ).fetchone()
        if row is None:
            raise UnknownCursorError(str(cursor))
        where += " AND d.seq > %s"
        params.append(row["seq"])
    rows = curs.execute(
        _DELIVERY_SELECT + where + " ORDER BY d.seq LIMIT %s", [*params, limit + 1]
    ).fetchall()
    return Page([delivery_document(r) for r in rows[:limit]], has_more=len(rows) > limit)


# Re-sending: a test message, one delivery again, or everything since a time.

_COPY = """
INSERT INTO webhook_deliveries (tenant_id, id, endpoint_id, seq, order_key, message_id,
    event_type, event_position, event_at, license_id, body, state, next_attempt_at,
    redelivery_of)
SELECT tenant_id, %(id)s, endpoint_id, %(seq)s, order_key, message_id, event_type,
    event_position, event_at, license_id, body, 'pending', now(), COALESCE(redelivery_of, id)
FROM webhook_deliveries WHERE tenant_id = %(tenant)s AND id = %(source)s
"""


def enqueue_test(
    curs: Cursor[DictRow],
    tenant_id: UUID,
    endpoint: dict[str, Any],
    *,
    delivery_id: UUID,
    message: str,
    at: datetime,
) -> dict[str, Any]:
    """A `webhook.test` message carrying the endpoint itself, outside any license order."""
    head = lock_head(curs, tenant_id, wait=True)
    assert head is not None
    body = render_envelope(message, str(WebhookEventType.WEBHOOK_TEST), at, 0, endpoint)
    endpoint_id = UUID(endpoint["id"])
    curs.execute(
        "INSERT INTO webhook_deliveries (tenant_id, id, endpoint_id, seq, order_key,"
        " message_id, event_type, event_at, body, state, next_attempt_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'pending', now())",
        (
            tenant_id,
            delivery_id,
            endpoint_id,
            head.next_seq,
            endpoint_id,
            message,
            str(WebhookEventType.WEBHOOK_TEST),
            at,
            body,
        ),
    )
    advance_head(curs, tenant_id, OutboxHead(head.position, head.next_seq + 1))
    found = get_delivery(curs, endpoint_id, delivery_id)
    assert found is not None
    return found


def redeliver(
    curs: Cursor[DictRow],
    tenant_id: UUID,
    endpoint_id: UUID,
    source_id: UUID,
    *,
    new_id: UUID,
) -> dict[str, Any] | None:
    """A copy of one delivery (same bytes), queued after everything of its license."""
    exists = curs.execute(
        "SELECT 1 FROM webhook_deliveries WHERE endpoint_id = %s AND id = %s",
        (endpoint_id, source_id),
    ).fetchone()
    if exists is None:
        return None
    head = lock_head(curs, tenant_id, wait=True)
    assert head is not None
    curs.execute(
        _COPY, {"id": new_id, "seq": head.next_seq, "tenant": tenant_id, "source": source_id}
    )
    advance_head(curs, tenant_id, OutboxHead(head.position, head.next_seq + 1))
    return get_delivery(curs, endpoint_id, new_id)


def recover(
    curs: Cursor[DictRow],
    tenant_id: UUID,
    endpoint_id: UUID,
    since: datetime,
    *,
    new_id: Callable[[], UUID],
) -> int:
    """Queue again, in their original order, the endpoint's messages since `since`.

    Includes delivered, failed and skipped ones (sent while the endpoint was disabled);
    pending ones not yet in flight are superseded by their copy so nothing is sent
    twice without need. Test messages are not part of it.
    """
    head = lock_head(curs, tenant_id, wait=True)
    assert head is not None
    curs.execute(
        "UPDATE webhook_deliveries SET state = 'superseded', updated_at = now()"
        " WHERE endpoint_id = %s AND state = 'pending' AND event_position IS NOT NULL"
        " AND event_at >= %s",
        (endpoint_id, since),
    )
    sources = curs.execute(
        "SELECT id FROM webhook_deliveries WHERE endpoint_id = %s AND redelivery_of IS NULL"
        " AND event_position IS NOT NULL AND event_at >= %s ORDER BY seq",
        (endpoint_id, since),
    ).fetchall()
    seq = head.next_seq
    for source in sources:
        curs.execute(
            _COPY, {"id": new_id(), "seq": seq, "tenant": tenant_id, "source": source["id"]}
        )
        seq += 1
    advance_head(curs, tenant_id, OutboxHead(head.position, seq))
    return len(sources)
