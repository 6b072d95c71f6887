"""Entitlements (API.md §4): named feature codes policies and licenses carry."""

from __future__ import annotations

from api.schemas.common import AUDIT_FIELDS
from api.schemas.common import METADATA
from api.schemas.common import UUID
from api.schemas.common import Schema
from api.schemas.common import document
from api.schemas.common import nullable
from api.schemas.common import strict
from api.schemas.common import text

_FIELDS: dict[str, Schema] = {
    "code": text(100, 1, pattern="^[a-z0-9_-]+$"),
    "name": text(255, 1),
    "description": nullable(text(1000)),
    "metadata": METADATA,
}

CREATE = strict(_FIELDS, required=["code", "name"])
UPDATE = strict(_FIELDS)
ENTITLEMENT = document({"id": UUID, **_FIELDS, **AUDIT_FIELDS})
