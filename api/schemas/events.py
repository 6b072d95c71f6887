"""The ledger's own surface (API.md §8): history entries, feeds, the signed head."""

from __future__ import annotations

from api.schemas.common import TIMESTAMP
from api.schemas.common import UUID
from api.schemas.common import Schema
from api.schemas.common import document
from api.schemas.common import enum
from api.schemas.common import integer
from api.schemas.common import nullable

ACTOR_TYPES = ("api_key", "license", "operator", "system")

EVENT: Schema = document(
    {
        "id": {**UUID, "description": "Stable: derived from (environment, stream, version)."},
        "type": {"type": "string", "description": "Stable event name, e.g. license.suspended"},
        "sequence": {
            **integer(1),
            "description": "Position in the environment's ledger (its hash-chain order).",
        },
        "occurredAt": TIMESTAMP,
        "recordedAt": TIMESTAMP,
        "actor": document({"type": enum(ACTOR_TYPES), "id": nullable({"type": "string"})}),
        "requestId": nullable({"type": "string"}),
        "streamType": {"type": "string"},
        "streamId": UUID,
        "version": {**integer(1), "description": "Position in its own stream."},
        "data": {
            "type": "object",
            "description": "The event's facts (camelCase; no stored hashes or secrets).",
        },
    }
)

CURSOR: Schema = {"type": "string", "pattern": "^[A-Za-z0-9_-]{27}$"}


def events_page(description: str) -> Schema:
    return {
        "type": "object",
        "properties": {
            "data": {"type": "array", "items": EVENT},
            "pagination": document(
                {
                    "nextCursor": {**CURSOR, "description": description},
                    "hasMore": {"type": "boolean"},
                }
            ),
        },
        "required": ["data", "pagination"],
    }


HEAD: Schema = document(
    {
        "environmentId": UUID,
        "position": {**integer(0), "description": "The newest position of the ledger."},
        "hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "signedAt": TIMESTAMP,
        "kid": {"type": "string"},
        "signature": {
            "type": "string",
            "description": "base64 Ed25519 signature (see docs/audit.md for the message).",
        },
    }
)
