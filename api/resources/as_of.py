"""`GET /licenses/{id}?asOf=<ISO time>`: the license as it stood then, from the ledger.

A hook for the license item resource: `as_of_param` reads the query (None when absent),
`license_as_of_view` answers the document or 404 if the license did not exist yet (or
had been deleted) at that moment. `asOf` in the future is refused: it is history, not a
forecast.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import falcon

from api.auth import principal_of
from api.errors import validation_error
from api.schemas.common import TIMESTAMP
from api.schemas.common import Schema
from api.services import Services
from ledger.domain.errors import NotFound
from projections.as_of import license_as_of

AS_OF_QUERY: dict[str, Schema] = {
    "asOf": {
        **TIMESTAMP,
        "description": "ISO 8601 with an offset (e.g. 2026-01-15T10:30:00.000Z): the license "
        "as it stood at that moment, rebuilt from the ledger (404 if it did not exist yet).",
    }
}


def as_of_param(req: falcon.Request, services: Services) -> datetime | None:
    raw = req.get_param("asOf")
    if raw is None:
        return None
    try:
        # An unencoded `+01:00` arrives as a space.
        moment = datetime.fromisoformat(raw.strip().replace(" ", "+"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise validation_error("asOf must be an ISO 8601 date-time with an offset", ["asOf"])
    if moment > services.clock():
        raise validation_error("asOf must not be in the future", ["asOf"])
    return moment


def license_as_of_view(
    services: Services, req: falcon.Request, license_id: UUID, at: datetime
) -> dict[str, Any]:
    view = license_as_of(services.ledger, principal_of(req).tenant_id, license_id, at)
    if view is None:
        raise NotFound("license not found at that time")
    return view
