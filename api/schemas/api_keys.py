"""API keys (API.md §3)."""

from __future__ import annotations

from api.schemas.common import TIMESTAMP
from api.schemas.common import UUID
from api.schemas.common import Schema
from api.schemas.common import document
from api.schemas.common import enum
from api.schemas.common import nullable
from api.schemas.common import strict
from api.schemas.common import text
from ledger.domain.codes import Scope

SCOPES: Schema = {
    "type": "array",
    "items": enum(Scope),
    "maxItems": len(Scope),
    "description": "An empty list is full access. A scoped key may only grant its own scopes.",
}

CREATE = strict(
    {
        "name": text(255, 1),
        "scopes": SCOPES,
        "expiresAt": nullable({**TIMESTAMP, "description": "A future moment; null: never."}),
    },
    required=["name"],
)

_FIELDS: dict[str, Schema] = {
    "id": UUID,
    "name": text(255, 1),
    "scopes": SCOPES,
    "prefix": {"type": "string", "description": "The key's first characters, to tell keys apart."},
    "createdAt": TIMESTAMP,
    "expiresAt": nullable(TIMESTAMP),
}

API_KEY = document(_FIELDS)
# The only document that carries the secret: the answer to its creation.
CREATED_API_KEY = document(
    {**_FIELDS, "key": {"type": "string", "pattern": "^lk_(live|test)_[0-9A-Za-z]{32,}$"}}
)
