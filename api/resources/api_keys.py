"""`/api-keys`: the caller's environment's API keys (API.md §3).

The secret is returned once, by the POST that creates it; lists never carry it (nor its
hash). Revocation is immediate: the key's lookup row goes in the revoking transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import falcon

from api.auth import Principal
from api.auth import principal_of
from api.errors import ApiError
from api.operations import operation
from api.requests import command_context
from api.requests import list_params
from api.requests import timestamp
from api.resources.reads import found
from api.resources.reads import reading
from api.resources.reads import respond_one
from api.resources.reads import respond_page
from api.schemas import api_keys as schemas
from api.schemas.common import LIST_QUERY
from api.schemas.common import one
from api.schemas.common import page
from api.services import Services
from ledger.commands.api_keys import create_api_key
from ledger.commands.api_keys import revoke_api_key
from ledger.domain.codes import ErrorCode
from ledger.domain.codes import Scope
from ledger.domain.errors import InvalidTransition
from ledger.domain.errors import NotFound
from projections.api_keys import get_api_key
from projections.api_keys import list_api_keys

# Secrets in a response must not be kept by a browser or proxy cache.
_NO_STORE = "no-store"


def check_grantable(principal: Principal, requested: Sequence[str]) -> None:
    """A key may only hand out what it holds itself (no privilege escalation).

    A full-access key (empty scopes) may create any key. A scoped key may create keys
    whose scopes are a non-empty subset of its own: asking for an empty list would be
    asking for full access, which it does not have.
    """
    if not principal.scopes:
        return
    beyond = sorted(set(requested) - set(principal.scopes))
    if not requested or beyond:
        raise ApiError(
            ErrorCode.FORBIDDEN,
            "An API key can only create keys with scopes it has itself.",
            details={"scopes": beyond or ["*"], "allowed": list(principal.scopes)},
        )


class ApiKeyCollection:
    def __init__(self, services: Services) -> None:
        self._services = services

    @operation(
        summary="Create an API key (the key is returned only here)",
        description="A scoped key may only create keys with a subset of its own scopes (403).",
        scope=Scope.API_KEYS_WRITE,
        body=schemas.CREATE,
        responses={201: one(schemas.CREATED_API_KEY)},
    )
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = req.context.body
        principal = principal_of(req)
        scopes = body.get("scopes", [])
        check_grantable(principal, scopes)
        assert principal.environment is not None  # an API key always has one
        issued = create_api_key(
            self._services.ledger,
            command_context(req, self._services),
            api_key_id=self._services.new_id(),
            environment=principal.environment,
            name=body["name"],
            scopes=scopes,
            expires_at=timestamp(body.get("expiresAt")),
            pepper=self._services.pepper,
        )
        with reading(self._services, req) as curs:
            created = found(get_api_key(curs, issued.api_key.id), "API key")
        resp.set_header("Cache-Control", _NO_STORE)
        respond_one(resp, {**created, "key": issued.key}, status=201)

    @operation(
        summary="List the environment's API keys (never the keys themselves)",
        scope=Scope.API_KEYS_WRITE,
        query=LIST_QUERY,
        responses={200: page(schemas.API_KEY)},
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        cursor, limit = list_params(req)
        with reading(self._services, req) as curs:
            respond_page(resp, list_api_keys(curs, cursor=cursor, limit=limit))


class ApiKeyItem:
    def __init__(self, services: Services) -> None:
        self._services = services

    @operation(
        summary="Revoke an API key (at once: its next request is 401)",
        description="An already revoked key, or another tenant's, is 404.",
        scope=Scope.API_KEYS_WRITE,
        responses={204: None},
    )
    def on_delete(self, req: falcon.Request, resp: falcon.Response, api_key_id: UUID) -> None:
        try:
            revoke_api_key(self._services.ledger, command_context(req, self._services), api_key_id)
        except InvalidTransition:
            # Revoked is gone from the list: the same 404 as absent (and as another
            # tenant's key), so a second DELETE tells nothing new.
            raise NotFound("API key not found") from None
        resp.status = 204
