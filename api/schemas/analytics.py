"""Response schema of `GET /analytics` (API.md §4 Analytics)."""

from __future__ import annotations

from api.schemas.common import Schema
from api.schemas.common import document

_COUNT: Schema = {"type": "integer", "minimum": 0}


def _counts(*names: str) -> Schema:
    return {**document(dict.fromkeys(names, _COUNT)), "additionalProperties": False}


ANALYTICS: Schema = document(
    {
        "licenses": _counts("total", "active", "expired", "suspended", "revoked", "banned"),
        "machines": _counts("total", "alive", "dead"),
        "activations": document(
            {
                "trend": {
                    "type": "array",
                    "description": "Machine activations per UTC day, last 7 days, oldest first.",
                    "minItems": 7,
                    "maxItems": 7,
                    "items": document(
                        {"date": {"type": "string", "format": "date"}, "count": _COUNT}
                    ),
                }
            }
        ),
        "validations": _counts("total", "successful", "failed"),
    }
)
