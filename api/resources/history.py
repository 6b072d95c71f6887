"""The ledger's own surface (API.md §8): a license's history, the environment's feed and
the signed head of its hash chain.

Scopes: a license's history is license data (`licenses:read`); the whole feed and the
chain head are the environment's ledger (`events:read`).
"""

from __future__ import annotations

import re
from uuid import UUID

import falcon

from api.auth import principal_of
from api.cursors import BadCursorError
from api.cursors import decode_cursor
from api.cursors import encode_cursor
from api.errors import validation_error
from api.operations import operation
from api.resources.reads import reading
from api.resources.reads import respond_one
from api.schemas import events as schemas
from api.schemas.common import integer
from api.schemas.common import one
from api.services import Services
from ledger.audit.head import sign_head
from ledger.domain.codes import Scope
from ledger.domain.environment import Environment
from ledger.domain.errors import NotFound
from ledger.store.hashchain import GENESIS_HASH
from ledger.store.tenancy import tenant_scope
from projections.history import EventPage
from projections.history import feed
from projections.history import license_history
from projections.history import license_stream_exists

HISTORY_LIMIT = (25, 100)  # default, maximum (API.md §1)
FEED_LIMIT = (100, 1000)  # a feed consumer catches up in larger pages
_TYPE = re.compile(r"^[a-z][a-z0-9_]*\.(\*|[a-z][a-z0-9_]*)$")
_MAX_TYPES = 50


def _limit(req: falcon.Request, default: int, maximum: int) -> int:
    raw = req.get_param("limit")
    if raw is None:
        return default
    if raw.isdigit() and 1 <= int(raw) <= maximum:
        return int(raw)
    raise validation_error(f"limit must be an integer from 1 to {maximum}", ["limit"])


def _position(services: Services, req: falcon.Request, name: str) -> int:
    cursor = req.get_param(name)
    if cursor is None:
        return 0
    try:
        return decode_cursor(services.pepper, principal_of(req).tenant_id, cursor)
    except BadCursorError:
        raise validation_error(f"{name} is not a cursor of this environment", [name]) from None


def _respond(
    services: Services, req: falcon.Request, resp: falcon.Response, page: EventPage
) -> None:
    cursor = encode_cursor(services.pepper, principal_of(req).tenant_id, page.last_position)
    resp.media = {
        "data": page.items,
        "pagination": {"nextCursor": cursor, "hasMore": page.has_more},
    }


class LicenseEvents:
    def __init__(self, services: Services) -> None:
        self._services = services

    @operation(
        summary="A license's full history, oldest first",
        description="Every event of the license stream (its machines, checkouts and usage "
        "included) and its validations, in ledger order. Deleted licenses keep their "
        "history. `nextCursor` is always given: store it to fetch later events.",
        scope=Scope.LICENSES_READ,
        query={
            "cursor": {**schemas.CURSOR, "description": "`nextCursor` of a previous page."},
            "limit": {**integer(1, HISTORY_LIMIT[1]), "default": HISTORY_LIMIT[0]},
        },
        responses={200: schemas.events_page("Where the next page starts.")},
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response, license_id: UUID) -> None:
        after = _position(self._services, req, "cursor")
        limit = _limit(req, *HISTORY_LIMIT)
        tenant_id = principal_of(req).tenant_id
        with reading(self._services, req) as curs:
            if not license_stream_exists(curs, license_id):
                raise NotFound("license not found")
            page = license_history(curs, tenant_id, license_id, after=after, limit=limit)
        _respond(self._services, req, resp, page)


def _types(req: falcon.Request) -> list[str]:
    raw = req.get_param("types")
    if raw is None or raw == "":
        return []
    types = [t.strip() for t in raw.split(",") if t.strip()]
    bad = [t for t in types if not _TYPE.fullmatch(t)]
    if bad or len(types) > _MAX_TYPES:
        message = (
            f"types must be up to {_MAX_TYPES} event types like license.suspended or license.*"
        )
        raise validation_error(message, ["types"])
    return types


class EventFeed:
    def __init__(self, services: Services) -> None:
        self._services = services

    @operation(
        summary="The environment's ledger as one ordered, resumable feed",
        description="Events in commit order (`sequence`). Store `nextCursor` and pass it "
        "as `after`: the next call starts right after, with no gap and no repeat, even "
        "when `types` filters (the cursor then moves past events that did not match).",
        scope=Scope.EVENTS_READ,
        query={
            "after": {**schemas.CURSOR, "description": "`nextCursor` of a previous call."},
            "types": {
                "type": "string",
                "description": "Comma-separated event types; `license.*` matches a prefix.",
            },
            "limit": {**integer(1, FEED_LIMIT[1]), "default": FEED_LIMIT[0]},
        },
        responses={200: schemas.events_page("Pass it as `after` to resume.")},
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        after = _position(self._services, req, "after")
        limit = _limit(req, *FEED_LIMIT)
        types = _types(req)
        tenant_id = principal_of(req).tenant_id
        with reading(self._services, req) as curs:
            page = feed(curs, tenant_id, after=after, limit=limit, types=types)
        _respond(self._services, req, resp, page)


class AuditHead:
    def __init__(self, services: Services) -> None:
        self._services = services

    @operation(
        summary="The signed head of the environment's hash chain",
        description="`hash` commits to every event up to `position`; `signature` is the "
        "environment's Ed25519 key (`kid`) over the head (docs/audit.md). Keep heads you "
        "fetch: a later export must extend them.",
        scope=Scope.EVENTS_READ,
        responses={200: one(schemas.HEAD)},
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        tenant_id = principal_of(req).tenant_id
        with reading(self._services, req) as curs:
            row = curs.execute(
                "SELECT position, hash FROM log_heads WHERE tenant_id = %s", (tenant_id,)
            ).fetchone()
        position, chain_hash = (0, GENESIS_HASH) if row is None else (row["position"], row["hash"])
        with tenant_scope(tenant_id):
            environment: object = self._services.ledger.repository.get(tenant_id)
        if not isinstance(environment, Environment):
            raise NotFound("environment not found")
        head = sign_head(
            environment,
            self._services.master_key,
            position=position,
            chain_hash=bytes(chain_hash),
            at=self._services.clock(),
        )
        respond_one(resp, head.document())
