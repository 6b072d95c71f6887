"""Webhook endpoints and their deliveries (API.md §6)."""

from __future__ import annotations

from api.schemas.common import AUDIT_FIELDS
from api.schemas.common import METADATA
from api.schemas.common import TIMESTAMP
from api.schemas.common import UUID
from api.schemas.common import Schema
from api.schemas.common import document
from api.schemas.common import enum
from api.schemas.common import integer
from api.schemas.common import nullable
from api.schemas.common import strict
from api.schemas.common import text
from ledger.domain.webhook_endpoint import MAX_SUBSCRIPTIONS
from ledger.webhooks.urls import MAX_URL_LENGTH

DELIVERY_STATES = ("pending", "in_flight", "delivered", "failed", "skipped", "superseded")

EVENTS: Schema = {
    "type": "array",
    "items": {"type": "string", "minLength": 1, "maxLength": 100},
    "minItems": 1,
    "maxItems": MAX_SUBSCRIPTIONS,
    "description": '`["*"]`, event types (`license.suspended`) or families (`license.*`).',
}

_FIELDS: dict[str, Schema] = {
    "url": {**text(MAX_URL_LENGTH, 1), "description": "http(s) URL the events are POSTed to."},
    "events": EVENTS,
    "description": nullable(text(1000)),
    "enabled": {"type": "boolean"},
    "metadata": METADATA,
}

CREATE = strict(_FIELDS, required=["url", "events"])
UPDATE = strict(_FIELDS)
RECOVER = strict({"since": TIMESTAMP}, required=["since"])

_DOCUMENT: dict[str, Schema] = {
    "id": UUID,
    **_FIELDS,
    "disabledReason": nullable({"type": "string"}),
    **AUDIT_FIELDS,
}
WEBHOOK = document(_DOCUMENT)
SECRET: Schema = {
    "type": "string",
    "pattern": "^whsec_[A-Za-z0-9+/]{43}=$",
    "description": "Shown only here: store it to verify signatures.",
}
# The only documents that carry the secret: creation and rotation.
WEBHOOK_WITH_SECRET = document({**_DOCUMENT, "secret": SECRET})

ATTEMPT = document(
    {
        "number": integer(1),
        "startedAt": TIMESTAMP,
        "finishedAt": nullable(TIMESTAMP),
        "httpStatus": nullable(integer(100, 599)),
        "latencyMs": nullable(integer(0)),
        "response": nullable({"type": "string", "description": "First 2 KiB of the body."}),
        "error": nullable({"type": "string"}),
    }
)

DELIVERY = document(
    {
        "id": UUID,
        "webhookId": UUID,
        "eventId": {"type": "string", "pattern": "^evt_[0-9a-f]{32}$"},
        "type": {"type": "string"},
        "sequence": integer(0),
        "licenseId": nullable(UUID),
        "status": enum(DELIVERY_STATES),
        "attemptCount": integer(0),
        "attempts": {"type": "array", "items": ATTEMPT},
        "lastHttpStatus": nullable(integer(100, 599)),
        "nextAttemptAt": nullable(TIMESTAMP),
        "deliveredAt": nullable(TIMESTAMP),
        "redeliveryOf": nullable(UUID),
        "payload": {"type": "object", "description": "The envelope, exactly as sent."},
        **AUDIT_FIELDS,
    }
)

RECOVERED = document({"enqueued": integer(0), "since": TIMESTAMP})
