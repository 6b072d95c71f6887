"""Products (API.md §4)."""

from __future__ import annotations

from api.schemas.common import AUDIT_FIELDS
from api.schemas.common import METADATA
from api.schemas.common import UUID
from api.schemas.common import Schema
from api.schemas.common import document
from api.schemas.common import integer
from api.schemas.common import nullable
from api.schemas.common import strict
from api.schemas.common import text

_FIELDS: dict[str, Schema] = {
    "name": text(255, 1),
    "code": text(50, 1, pattern="^[A-Za-z0-9_-]+$"),
    "description": nullable(text(1000)),
    "keyPrefix": text(10, 2, pattern="^[A-Z]{2,10}$"),
    "metadata": METADATA,
}

CREATE = strict(_FIELDS, required=["name", "code"])
UPDATE = strict(_FIELDS)
PRODUCT = document({"id": UUID, **_FIELDS, "licensesCount": integer(0), **AUDIT_FIELDS})
