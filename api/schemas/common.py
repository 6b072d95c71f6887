"""Building blocks shared by every resource's schemas."""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from typing import Any

Schema = dict[str, Any]

UUID: Schema = {"type": "string", "format": "uuid"}
TIMESTAMP: Schema = {"type": "string", "format": "date-time"}
METADATA: Schema = {
    "type": "object",
    "description": "Free JSON object: at most 64 keys and 16 KiB.",
    "maxProperties": 64,
}
CODES: Schema = {
    "type": "array",
    "items": {"type": "string", "pattern": "^[a-z0-9_-]{1,100}$"},
    "maxItems": 100,
}


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def text(max_length: int, min_length: int = 0, **extra: Any) -> Schema:
    return {"type": "string", "minLength": min_length, "maxLength": max_length, **extra}


def integer(minimum: int, maximum: int | None = None) -> Schema:
    schema: Schema = {"type": "integer", "minimum": minimum}
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


def enum(values: Iterable[str]) -> Schema:
    return {"type": "string", "enum": [str(v) for v in values]}


def strict(properties: Mapping[str, Schema], required: Iterable[str] = ()) -> Schema:
    """A request body: unknown fields are a 400 (API.md §2)."""
    return {
        "type": "object",
        "properties": dict(properties),
        "required": list(required),
        "additionalProperties": False,
    }


def document(properties: Mapping[str, Schema]) -> Schema:
    """A response resource: every documented field is always present."""
    return {"type": "object", "properties": dict(properties), "required": list(properties)}


def one(schema: Schema) -> Schema:
    """`{"data": {...}}`."""
    return {"type": "object", "properties": {"data": schema}, "required": ["data"]}


def page(schema: Schema) -> Schema:
    """`{"data": [...], "pagination": {"nextCursor", "hasMore"}}`."""
    return {
        "type": "object",
        "properties": {
            "data": {"type": "array", "items": schema},
            "pagination": document({"nextCursor": nullable(UUID), "hasMore": {"type": "boolean"}}),
        },
        "required": ["data", "pagination"],
    }


ERROR: Schema = {
    "type": "object",
    "properties": {
        "error": {"type": "string"},
        "code": {"type": "string"},
        "status": {"type": "integer"},
        "details": {"type": "object"},
        "requestId": {"type": "string"},
    },
    "required": ["error", "code", "status", "requestId"],
}

LIST_QUERY: dict[str, Schema] = {
    "cursor": {**UUID, "description": "Id of the last item of the previous page."},
    "limit": {**integer(1, 100), "default": 25},
}

AUDIT_FIELDS: dict[str, Schema] = {"createdAt": TIMESTAMP, "updatedAt": TIMESTAMP}
