"""`/webhooks`: endpoints, their secrets, test messages and the delivery log (API.md §6)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import falcon

from api.auth import principal_of
from api.errors import validation_error
from api.operations import operation
from api.requests import command_context
from api.requests import given_fields
from api.requests import list_params
from api.requests import timestamp
from api.resources.reads import found
from api.resources.reads import reading
from api.resources.reads import respond_one
from api.resources.reads import respond_page
from api.routing import RouteTable
from api.schemas import webhooks as schemas
from api.schemas.common import LIST_QUERY
from api.schemas.common import enum
from api.schemas.common import one
from api.schemas.common import page
from api.services import Services
from ledger.commands import webhooks as commands
from ledger.domain.codes import Scope
from projections import webhook_deliveries as deliveries
from projections.webhook_endpoints import get_webhook
from projections.webhook_endpoints import list_webhooks
from projections.wire import iso_ms

_FIELDS = {
    "url": "url",
    "events": "events",
    "description": "description",
    "enabled": "enabled",
    "metadata": "metadata",
}


def _destinations(services: Services) -> commands.DestinationPolicy:
    return commands.DestinationPolicy(allow_private=services.config.webhook_allow_private)


def _read(services: Services, req: falcon.Request, webhook_id: UUID) -> dict[str, Any]:
    with reading(services, req) as curs:
        return found(get_webhook(curs, webhook_id), "webhook")


class WebhookCollection:
    def __init__(self, services: Services) -> None:
        self._services = services

    @operation(
        summary="Create a webhook endpoint",
        description="The answer carries `secret`, shown only here and by rotate-secret.",
        scope=Scope.WEBHOOKS_WRITE,
        body=schemas.CREATE,
        responses={201: one(schemas.WEBHOOK_WITH_SECRET)},
    )
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = req.context.body
        created = commands.create_webhook_endpoint(
            self._services.ledger,
            command_context(req, self._services),
            endpoint_id=self._services.new_id(),
            url=body["url"],
            events=body["events"],
            description=body.get("description"),
            enabled=body.get("enabled", True),
            metadata=body.get("metadata"),
            master_key=self._services.master_key,
            destinations=_destinations(self._services),
        )
        document = _read(self._services, req, created.endpoint.id)
        respond_one(resp, {**document, "secret": created.secret}, status=201)

    @operation(
        summary="List webhook endpoints",
        scope=Scope.WEBHOOKS_READ,
        query=LIST_QUERY,
        responses={200: page(schemas.WEBHOOK)},
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        cursor, limit = list_params(req)
        with reading(self._services, req) as curs:
            respond_page(resp, list_webhooks(curs, cursor=cursor, limit=limit))


class WebhookItem:
    def __init__(self, services: Services) -> None:
        self._services = services

    @operation(
        summary="Get a webhook endpoint",
        scope=Scope.WEBHOOKS_READ,
        responses={200: one(schemas.WEBHOOK)},
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response, webhook_id: UUID) -> None:
        respond_one(resp, _read(self._services, req, webhook_id))

    @operation(
        summary="Update a webhook endpoint",
        description="`enabled: true` turns an endpoint disabled by a 410 back on.",
        scope=Scope.WEBHOOKS_WRITE,
        body=schemas.UPDATE,
        responses={200: one(schemas.WEBHOOK)},
    )
    def on_patch(self, req: falcon.Request, resp: falcon.Response, webhook_id: UUID) -> None:
        changes = given_fields(req.context.body, _FIELDS)
        commands.update_webhook_endpoint(
            self._services.ledger,
            command_context(req, self._services),
            webhook_id,
            changes,
            _destinations(self._services),
        )
        respond_one(resp, _read(self._services, req, webhook_id))

    @operation(
        summary="Delete a webhook endpoint (no further deliveries)",
        scope=Scope.WEBHOOKS_WRITE,
        responses={204: None},
    )
    def on_delete(self, req: falcon.Request, resp: falcon.Response, webhook_id: UUID) -> None:
        commands.delete_webhook_endpoint(
            self._services.ledger, command_context(req, self._services), webhook_id
        )
        resp.status = 204


class WebhookRotateSecret:
    def __init__(self, services: Services) -> None:
        self._services = services

    @operation(
        summary="Replace the endpoint's signing secret",
        description="Every attempt from now on, retries included, is signed with the new one.",
        scope=Scope.WEBHOOKS_WRITE,
        responses={200: one(schemas.WEBHOOK_WITH_SECRET)},
    )
    def on_post(self, req: falcon.Request, resp: falcon.Response, webhook_id: UUID) -> None:
        rotated = commands.rotate_webhook_secret(
            self._services.ledger,
            command_context(req, self._services),
            webhook_id,
            self._services.master_key,
        )
        document = _read(self._services, req, webhook_id)
        respond_one(resp, {**document, "secret": rotated.secret})


class WebhookTest:
    def __init__(self, services: Services) -> None:
        self._services = services

    @operation(
        summary="Send a `webhook.test` message to the endpoint",
        scope=Scope.WEBHOOKS_WRITE,
        responses={200: one(schemas.DELIVERY)},
    )
    def on_post(self, req: falcon.Request, resp: falcon.Response, webhook_id: UUID) -> None:
        tenant = principal_of(req).tenant_id
        with reading(self._services, req) as curs:
            endpoint = found(get_webhook(curs, webhook_id), "webhook")
            delivery = deliveries.enqueue_test(
                curs,
                tenant,
                endpoint,
                delivery_id=self._services.new_id(),
                message="evt_" + self._services.new_id().hex,
                at=self._services.clock(),
            )
        respond_one(resp, delivery)


class WebhookDeliveryCollection:
    def __init__(self, services: Services) -> None:
        self._services = services

    @operation(
        summary="The endpoint's delivery log, in sending order",
        scope=Scope.WEBHOOKS_READ,
        query={
            **LIST_QUERY,
            "status": {
                **enum(schemas.DELIVERY_STATES),
                "description": "Only deliveries in this state.",
            },
        },
        responses={200: page(schemas.DELIVERY)},
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response, webhook_id: UUID) -> None:
        cursor, limit = list_params(req)
        status = req.get_param("status")
        if status is not None and status not in schemas.DELIVERY_STATES:
            raise validation_error("status is not a delivery state", ["status"])
        with reading(self._services, req) as curs:
            found(get_webhook(curs, webhook_id), "webhook")
            listed = deliveries.list_deliveries(
                curs, webhook_id, cursor=cursor, limit=limit, status=status
            )
        respond_page(resp, listed)


class WebhookDeliveryItem:
    def __init__(self, services: Services) -> None:
        self._services = services

    @operation(
        summary="One delivery with its attempts",
        scope=Scope.WEBHOOKS_READ,
        responses={200: one(schemas.DELIVERY)},
    )
    def on_get(
        self, req: falcon.Request, resp: falcon.Response, webhook_id: UUID, delivery_id: UUID
    ) -> None:
        with reading(self._services, req) as curs:
            found(get_webhook(curs, webhook_id), "webhook")
            delivery = deliveries.get_delivery(curs, webhook_id, delivery_id)
        respond_one(resp, found(delivery, "delivery"))


class WebhookRedeliver:
    def __init__(self, services: Services) -> None:
        self._services = services

    @operation(
        summary="Send one delivery again (same bytes, new delivery)",
        description="Queued behind everything already pending for its license.",
        scope=Scope.WEBHOOKS_WRITE,
        responses={200: one(schemas.DELIVERY)},
    )
    def on_post(
        self, req: falcon.Request, resp: falcon.Response, webhook_id: UUID, delivery_id: UUID
    ) -> None:
        tenant = principal_of(req).tenant_id
        with reading(self._services, req) as curs:
            found(get_webhook(curs, webhook_id), "webhook")
            copy = deliveries.redeliver(
                curs, tenant, webhook_id, delivery_id, new_id=self._services.new_id()
            )
        respond_one(resp, found(copy, "delivery"))


class WebhookRecover:
    def __init__(self, services: Services) -> None:
        self._services = services

    @operation(
        summary="Re-send, in order, every message since a moment",
        description=(
            "Delivered, failed and skipped (endpoint disabled) messages whose event occurred"
            " at or after `since` are queued again in their original order."
        ),
        scope=Scope.WEBHOOKS_WRITE,
        body=schemas.RECOVER,
        responses={200: one(schemas.RECOVERED)},
    )
    def on_post(self, req: falcon.Request, resp: falcon.Response, webhook_id: UUID) -> None:
        since = timestamp(req.context.body["since"])
        assert since is not None
        tenant = principal_of(req).tenant_id
        with reading(self._services, req) as curs:
            found(get_webhook(curs, webhook_id), "webhook")
            count = deliveries.recover(
                curs, tenant, webhook_id, since, new_id=self._services.new_id
            )
        respond_one(resp, {"enqueued": count, "since": iso_ms(since)})


def add_webhook_routes(routes: RouteTable, services: Services, prefix: str) -> None:
    """The /webhooks routes (called from `api.app.add_routes`)."""
    item = f"{prefix}/webhooks/{{webhook_id:uuid}}"
    routes.add(f"{prefix}/webhooks", WebhookCollection(services))
    routes.add(item, WebhookItem(services))
    routes.add(f"{item}/rotate-secret", WebhookRotateSecret(services))
    routes.add(f"{item}/test", WebhookTest(services))
    routes.add(f"{item}/recover", WebhookRecover(services))
    routes.add(f"{item}/deliveries", WebhookDeliveryCollection(services))
    routes.add(f"{item}/deliveries/{{delivery_id:uuid}}", WebhookDeliveryItem(services))
    routes.add(f"{item}/deliveries/{{delivery_id:uuid}}/redeliver", WebhookRedeliver(services))
