"""The webhook outbox: a tailing consumer that turns each tenant's log into deliveries.

Exactly once inside Postgres: one transaction locks the tenant's outbox head row, reads
the events after its position (positions are gapless and committed in order per tenant,
so nothing can be skipped), inserts a delivery per (event, subscribed endpoint) and
moves the position. A crash anywhere rolls all of it back; the next pass redoes it.

Several worker processes may run this: the head row is claimed with SKIP LOCKED, so
each tenant is consumed by one of them at a time while the others take other tenants.
Only which tenants are behind is asked across tenants (`webhook_tenants_behind`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID
from uuid import uuid4

from psycopg import Cursor
from psycopg.rows import DictRow

from ledger.application import LedgerApplication
from ledger.domain.webhook_endpoint import subscribes
from ledger.store.log import read_log
from ledger.store.tenancy import set_transaction_tenant
from projections.webhook_events import MessageRenderer
from projections.webhook_events import webhook_type

CONSUMER = "webhooks"
DEFAULT_BATCH = 500


@dataclass(frozen=True)
class OutboxHead:
    position: int
    next_seq: int


def lock_head(curs: Cursor[DictRow], tenant_id: UUID, *, wait: bool) -> OutboxHead | None:
    """Lock the tenant's outbox head row for this transaction (creating it if needed).

    With `wait=False`, None when another transaction holds it (someone else is
    consuming this tenant right now).
    """
    lock = "FOR UPDATE" if wait else "FOR UPDATE SKIP LOCKED"
    select = (
        "SELECT position, next_seq FROM webhook_outbox_heads"  # noqa: S608 (fixed text)
        f" WHERE tenant_id = %s AND consumer = %s {lock}"
    )
    row = curs.execute(select, (tenant_id, CONSUMER)).fetchone()
    if row is None:
        row = curs.execute(
            "INSERT INTO webhook_outbox_heads (tenant_id, consumer) VALUES (%s, %s)"
            " ON CONFLICT DO NOTHING RETURNING position, next_seq",
            (tenant_id, CONSUMER),
        ).fetchone()
        if row is None and wait:
            row = curs.execute(select, (tenant_id, CONSUMER)).fetchone()
    return None if row is None else OutboxHead(int(row["position"]), int(row["next_seq"]))


def advance_head(curs: Cursor[DictRow], tenant_id: UUID, head: OutboxHead) -> None:
    curs.execute(
        "UPDATE webhook_outbox_heads SET position = %s, next_seq = %s, updated_at = now()"
        " WHERE tenant_id = %s AND consumer = %s",
        (head.position, head.next_seq, tenant_id, CONSUMER),
    )


@dataclass(frozen=True)
class Target:
    """An endpoint as the consumer sees it; `since` is the position of its creation."""

    id: UUID
    events: list[str]
    enabled: bool
    since: int


def _targets(curs: Cursor[DictRow]) -> list[Target]:
    # An endpoint receives the events logged after its own creation, never older ones,
    # however far behind the consumer is.
    rows = curs.execute(
        "SELECT w.id, w.events, w.enabled, (SELECT ev.position FROM events ev"
        " WHERE ev.tenant_id = w.tenant_id AND ev.stream_id = w.id AND ev.version = 1) AS since"
        " FROM webhook_endpoints w WHERE NOT w.deleted"
    ).fetchall()
    return [Target(r["id"], list(r["events"]), r["enabled"], int(r["since"] or 0)) for r in rows]


_INSERT_DELIVERY = """
INSERT INTO webhook_deliveries (tenant_id, id, endpoint_id, seq, order_key, message_id,
    event_type, event_position, event_at, license_id, body, state, next_attempt_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
    CASE WHEN %s THEN now() END)
"""


class WebhookOutbox:
    """One consumer pass: every tenant that is behind, one batch each."""

    def __init__(self, app: LedgerApplication, *, batch: int = DEFAULT_BATCH) -> None:
        self._app = app
        self._batch = batch

    def tenants_behind(self, limit: int = 100) -> list[UUID]:
        with self._app.transaction() as curs:
            rows = curs.execute(
                "SELECT tenant_id FROM webhook_tenants_behind(%s, %s)", (CONSUMER, limit)
            ).fetchall()
        return [r["tenant_id"] for r in rows]

    def run_once(self) -> int:
        return sum(self.consume(tenant) for tenant in self.tenants_behind())

    def consume(self, tenant_id: UUID) -> int:
        """One batch of `tenant_id`'s log into deliveries; returns events consumed."""
        with self._app.transaction() as curs:
            set_transaction_tenant(curs, tenant_id)
            head = lock_head(curs, tenant_id, wait=False)
            if head is None:
                return 0
            events = read_log(curs.connection, tenant_id, after=head.position, limit=self._batch)
            if not events:
                return 0
            targets = _targets(curs)
            renderer = MessageRenderer(self._app, tenant_id, curs)
            rows: list[tuple[Any, ...]] = []
            next_seq = head.next_seq
            for event in events:
                kind = webhook_type(event)
                if kind is None:
                    continue
                subscribers = [
                    t for t in targets if t.since < event.position and subscribes(t.events, kind)
                ]
                if not subscribers:
                    continue
                message = renderer.render(event)
                assert message is not None
                for target in subscribers:
                    state = "pending" if target.enabled else "skipped"
                    rows.append(
                        (
                            tenant_id,
                            uuid4(),
                            target.id,
                            next_seq,
                            message.order_key,
                            message.id,
                            str(kind),
                            event.position,
                            event.occurred_at,
                            message.license_id,
                            message.body,
                            state,
                            target.enabled,
                        )
                    )
                    next_seq += 1
            if rows:
                curs.executemany(_INSERT_DELIVERY, rows)
            advance_head(curs, tenant_id, OutboxHead(events[-1].position, next_seq))
        return len(events)
