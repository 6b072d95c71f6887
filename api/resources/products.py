"""`/products`: the catalogue's products (API.md §4)."""

from __future__ import annotations

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
from api.schemas import products as schemas
from api.schemas.common import LIST_QUERY
from api.schemas.common import one
from api.schemas.common import page
from api.services import Services
from ledger.commands import catalogue
from ledger.domain.codes import Scope
from ledger.domain.errors import Conflict
from ledger.domain.product import DEFAULT_KEY_PREFIX
from projections.queries import count_live
from projections.queries import get_document
from projections.queries import list_documents

_FIELDS = {
    "name": "name",
    "code": "code",
    "description": "description",
    "keyPrefix": "key_prefix",
    "metadata": "metadata",
}


def _read(services: Services, req: falcon.Request, product_id: UUID) -> dict[str, object]:
    with reading(services, req) as curs:
        return found(get_document(curs, "products", product_id), "product")


class ProductCollection:
    def __init__(self, services: Services) -> None:
        self._services = services

    @operation(
        summary="Create a product",
        scope=Scope.PRODUCTS_WRITE,
        body=schemas.CREATE,
        responses={201: one(schemas.PRODUCT)},
    )
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = req.context.body
        product = catalogue.create_product(
            self._services.ledger,
            command_context(req, self._services),
            product_id=self._services.new_id(),
            name=body["name"],
            code=body["code"],
            description=body.get("description"),
            key_prefix=body.get("keyPrefix", DEFAULT_KEY_PREFIX),
            metadata=body.get("metadata"),
        )
        respond_one(resp, _read(self._services, req, product.id), status=201)

    @operation(
        summary="List products",
        scope=Scope.PRODUCTS_READ,
        query=LIST_QUERY,
        responses={200: page(schemas.PRODUCT)},
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        cursor, limit = list_params(req)
        with reading(self._services, req) as curs:
            respond_page(resp, list_documents(curs, "products", cursor=cursor, limit=limit))


class ProductItem:
    def __init__(self, services: Services) -> None:
        self._services = services

    @operation(
        summary="Get a product", scope=Scope.PRODUCTS_READ, responses={200: one(schemas.PRODUCT)}
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response, product_id: UUID) -> None:
        respond_one(resp, _read(self._services, req, product_id))

    @operation(
        summary="Update a product",
        scope=Scope.PRODUCTS_WRITE,
        body=schemas.UPDATE,
        responses={200: one(schemas.PRODUCT)},
    )
    def on_patch(self, req: falcon.Request, resp: falcon.Response, product_id: UUID) -> None:
        changes = given_fields(req.context.body, _FIELDS)
        ctx = command_context(req, self._services)
        catalogue.update_product(self._services.ledger, ctx, product_id, changes)
        respond_one(resp, _read(self._services, req, product_id))

    @operation(
        summary="Delete a product (soft: its history stays in the ledger)",
        description="Refused (409) while the product has live policies or licenses.",
        scope=Scope.PRODUCTS_WRITE,
        responses={204: None},
    )
    def on_delete(self, req: falcon.Request, resp: falcon.Response, product_id: UUID) -> None:
        with reading(self._services, req) as curs:
            found(get_document(curs, "products", product_id), "product")
            in_use = count_live(curs, "policies", "product_id", product_id)
        if in_use:
            msg = f"The product still has {in_use} policies; delete them first."
            raise Conflict(msg, {"policies": in_use})
        catalogue.delete_product(
            self._services.ledger, command_context(req, self._services), product_id
        )
        resp.status = 204
