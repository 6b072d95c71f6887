"""`/entitlements`: feature codes that policies and licenses grant (API.md §4)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import falcon

from api.operations import operation
from api.requests import command_context
from api.requests import given_fields
from api.requests import list_params
from api.resources.reads import found
from api.resources.reads import reading
from api.resources.reads import respond_one
from api.resources.reads import respond_page
from api.schemas import entitlements as schemas
from api.schemas.common import LIST_QUERY
from api.schemas.common import one
from api.schemas.common import page
from api.services import Services
from ledger.commands import catalogue
from ledger.domain.codes import Scope
from projections.queries import get_document
from projections.queries import list_documents

_FIELDS = {"code": "code", "name": "name", "description": "description", "metadata": "metadata"}


def _read(services: Services, req: falcon.Request, entitlement_id: UUID) -> dict[str, Any]:
    with reading(services, req) as curs:
        return found(get_document(curs, "entitlements", entitlement_id), "entitlement")


class EntitlementCollection:
    def __init__(self, services: Services) -> None:
        self._services = services

    @operation(
        summary="Create an entitlement",
        description="`code` is unique per environment: a duplicate is 409 CONFLICT.",
        scope=Scope.ENTITLEMENTS_WRITE,
        body=schemas.CREATE,
        responses={201: one(schemas.ENTITLEMENT)},
    )
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = req.context.body
        entitlement = catalogue.create_entitlement(
            self._services.ledger,
            command_context(req, self._services),
            entitlement_id=self._services.new_id(),
            code=body["code"],
            name=body["name"],
            description=body.get("description"),
            metadata=body.get("metadata"),
        )
        respond_one(resp, _read(self._services, req, entitlement.id), status=201)

    @operation(
        summary="List entitlements",
        scope=Scope.ENTITLEMENTS_READ,
        query=LIST_QUERY,
        responses={200: page(schemas.ENTITLEMENT)},
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        cursor, limit = list_params(req)
        with reading(self._services, req) as curs:
            respond_page(resp, list_documents(curs, "entitlements", cursor=cursor, limit=limit))


class EntitlementItem:
    def __init__(self, services: Services) -> None:
        self._services = services

    @operation(
        summary="Get an entitlement",
        scope=Scope.ENTITLEMENTS_READ,
        responses={200: one(schemas.ENTITLEMENT)},
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response, entitlement_id: UUID) -> None:
        respond_one(resp, _read(self._services, req, entitlement_id))

    @operation(
        summary="Update an entitlement",
        description="Changing `code` to one another entitlement has is 409 CONFLICT.",
        scope=Scope.ENTITLEMENTS_WRITE,
        body=schemas.UPDATE,
        responses={200: one(schemas.ENTITLEMENT)},
    )
    def on_patch(self, req: falcon.Request, resp: falcon.Response, entitlement_id: UUID) -> None:
        changes = given_fields(req.context.body, _FIELDS)
        ctx = command_context(req, self._services)
        catalogue.update_entitlement(self._services.ledger, ctx, entitlement_id, changes)
        respond_one(resp, _read(self._services, req, entitlement_id))

    @operation(
        summary="Delete an entitlement (soft: its history stays in the ledger)",
        scope=Scope.ENTITLEMENTS_WRITE,
        responses={204: None},
    )
    def on_delete(self, req: falcon.Request, resp: falcon.Response, entitlement_id: UUID) -> None:
        catalogue.delete_entitlement(
            self._services.ledger, command_context(req, self._services), entitlement_id
        )
        resp.status = 204
