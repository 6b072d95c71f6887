"""Reading a request: who acts (command context), list parameters, typed fields."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

import falcon

from api.auth import principal_of
from api.errors import validation_error
from api.request_id import request_id_of
from api.services import Services
from ledger.commands.base import Actor
from ledger.commands.base import CommandContext
from ledger.domain.base import UNSET
from ledger.domain.base import Unset

DEFAULT_LIMIT = 25
MAX_LIMIT = 100


def command_context(req: falcon.Request, services: Services) -> CommandContext:
    principal = principal_of(req)
    return CommandContext(
        tenant_id=principal.tenant_id,
        actor=Actor(principal.kind, principal.id),
        at=services.clock(),
        request_id=request_id_of(req),
        idempotency_key=req.get_header("Idempotency-Key"),
    )


def query_uuid(req: falcon.Request, name: str) -> UUID | None:
    value = req.get_param(name)
    if value is None:
        return None
    try:
        return UUID(value)
    except ValueError:
        raise validation_error(f"{name} must be a UUID", [name]) from None


def list_params(req: falcon.Request) -> tuple[UUID | None, int]:
    """`cursor` (id of the last item seen) and `limit` (1-100, default 25)."""
    raw = req.get_param("limit")
    if raw is None:
        limit = DEFAULT_LIMIT
    elif raw.isdigit() and 1 <= int(raw) <= MAX_LIMIT:
        limit = int(raw)
    else:
        raise validation_error(f"limit must be an integer from 1 to {MAX_LIMIT}", ["limit"])
    return query_uuid(req, "cursor"), limit


def timestamp(value: str | None) -> datetime | None:
    """A date-time the body schema already checked (ISO 8601 with an offset)."""
    return None if value is None else datetime.fromisoformat(value)


def optional(body: Mapping[str, Any], field: str) -> Any:
    """The field's value, or UNSET when the body does not have it (PATCH semantics)."""
    return body.get(field, UNSET)


def given_fields(body: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    """camelCase body fields -> snake_case command arguments, only those present."""
    return {snake: body[camel] for camel, snake in names.items() if camel in body}


def is_unset(value: object) -> bool:
    return isinstance(value, Unset)


def uuid_or_unset(value: Any) -> UUID | Unset:
    return value if isinstance(value, Unset) else UUID(value)
