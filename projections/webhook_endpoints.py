"""Read model of webhook endpoints: the wire document, and the columns the outbox needs.

The encrypted secret is a column of its own, never part of `doc`: documents are what
the API returns, and the secret leaves the server only when it is created or rotated.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from ledger.domain.webhook_endpoint import WebhookEndpoint
from projections.queries import Page
from projections.queries import UnknownCursorError
from projections.wire import iso_ms


def webhook_document(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": str(endpoint.id),
        "url": endpoint.url,
        "events": list(endpoint.events),
        "description": endpoint.description,
        "enabled": endpoint.enabled,
        "disabledReason": None if endpoint.enabled else endpoint.disabled_reason,
        "metadata": endpoint.metadata,
        "createdAt": iso_ms(endpoint.created_at),
        "updatedAt": iso_ms(endpoint.updated_at),
    }


def project_webhook_endpoint(
    curs: Cursor[DictRow], tenant_id: UUID, endpoint: WebhookEndpoint
) -> None:
    curs.execute(
        "INSERT INTO webhook_endpoints (tenant_id, id, url, events, enabled, deleted,"
        " encrypted_secret, created_at, doc) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (tenant_id, id) DO UPDATE SET url = EXCLUDED.url,"
        " events = EXCLUDED.events, enabled = EXCLUDED.enabled, deleted = EXCLUDED.deleted,"
        " encrypted_secret = EXCLUDED.encrypted_secret, doc = EXCLUDED.doc",
        (
            tenant_id,
            endpoint.id,
            endpoint.url,
            list(endpoint.events),
            endpoint.enabled,
            endpoint.deleted,
            endpoint.encrypted_secret,
            endpoint.created_at,
            Jsonb(webhook_document(endpoint)),
        ),
        prepare=True,
    )


def get_webhook(curs: Cursor[DictRow], endpoint_id: UUID) -> dict[str, Any] | None:
    row = curs.execute(
        "SELECT doc FROM webhook_endpoints WHERE id = %s AND NOT deleted", (endpoint_id,)
    ).fetchone()
    return None if row is None else dict(row["doc"])


def list_webhooks(curs: Cursor[DictRow], *, cursor: UUID | None, limit: int) -> Page:
    params: list[Any] = []
    after = ""
    if cursor is not None:
        known = curs.execute("SELECT 1 FROM webhook_endpoints WHERE id = %s", (cursor,))
        if known.fetchone() is None:
            raise UnknownCursorError(str(cursor))
        after = (
            " AND (created_at, id) > (SELECT c.created_at, c.id FROM webhook_endpoints c"
            " WHERE c.id = %s)"
        )
        params.append(cursor)
    rows = curs.execute(
        "SELECT doc FROM webhook_endpoints WHERE NOT deleted"  # noqa: S608 (fixed text)
        + after
        + " ORDER BY created_at, id LIMIT %s",
        [*params, limit + 1],
    ).fetchall()
    return Page([dict(r["doc"]) for r in rows[:limit]], has_more=len(rows) > limit)
