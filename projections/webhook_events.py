"""Ledger events -> webhook messages: type, ordering key and the rendered envelope.

Stored event names (`license.machine_activated`) map to the webhook types of API.md §6
(`machine.activated`); events with no webhook type (API keys, environments, endpoint
changes, machine renames) produce nothing. `data` is the resource *after* the change:
the aggregate is rebuilt at the event's version (snapshot + the events up to it, then
stepped forward event by event within a batch) and rendered with the same document
functions the read models use, so a lagging consumer still describes each change as it
was, not the resource's latest state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.application import project_aggregate
from psycopg import Cursor
from psycopg.rows import DictRow

from ledger.application import LedgerApplication
from ledger.domain.codes import WebhookEventType as W
from ledger.domain.entitlement import Entitlement
from ledger.domain.license import License
from ledger.domain.policy import Policy
from ledger.domain.product import Product
from ledger.store.log import LoggedEvent
from ledger.store.recorder import stored_event_from_row
from ledger.store.tenancy import tenant_scope
from projections.catalogue import entitlement_document
from projections.catalogue import policy_document
from projections.catalogue import product_document
from projections.licenses import license_document
from projections.licenses import license_view
from projections.licenses import machine_document
from projections.wire import iso_ms

WEBHOOK_TYPES: dict[str, W] = {
    "license.created": W.LICENSE_CREATED,
    "license.updated": W.LICENSE_UPDATED,
    "license.usage_reset": W.LICENSE_UPDATED,
    "license.activated": W.LICENSE_ACTIVATED,
    "license.suspended": W.LICENSE_SUSPENDED,
    "license.reinstated": W.LICENSE_REINSTATED,
    "license.renewed": W.LICENSE_RENEWED,
    "license.revoked": W.LICENSE_REVOKED,
    "license.banned": W.LICENSE_BANNED,
    "license.expired": W.LICENSE_EXPIRED,
    "license.deleted": W.LICENSE_DELETED,
    "license.limit_reached": W.LICENSE_LIMIT_REACHED,
    "license.checked_out": W.LICENSE_CHECKED_OUT,
    "license.file_regenerated": W.LICENSE_FILE_REGENERATED,
    "license.usage_incremented": W.LICENSE_USAGE_INCREMENTED,
    "license.entitlements_attached": W.LICENSE_ENTITLEMENTS_CHANGED,
    "license.entitlements_detached": W.LICENSE_ENTITLEMENTS_CHANGED,
    "license.machine_activated": W.MACHINE_ACTIVATED,
    "license.machine_deactivated": W.MACHINE_DEACTIVATED,
    "license.machine_heartbeat_started": W.MACHINE_HEARTBEAT_STARTED,
    "license.machine_died": W.MACHINE_DEAD,
    "license.machine_revived": W.MACHINE_REVIVED,
    "validation.success": W.VALIDATION_SUCCESS,
    "validation.failed": W.VALIDATION_FAILED,
    "product.created": W.PRODUCT_CREATED,
    "product.updated": W.PRODUCT_UPDATED,
    "product.deleted": W.PRODUCT_DELETED,
    "policy.created": W.POLICY_CREATED,
    "policy.updated": W.POLICY_UPDATED,
    "policy.entitlements_attached": W.POLICY_UPDATED,
    "policy.entitlements_detached": W.POLICY_UPDATED,
    "policy.deleted": W.POLICY_DELETED,
    "entitlement.created": W.ENTITLEMENT_CREATED,
    "entitlement.updated": W.ENTITLEMENT_UPDATED,
    "entitlement.deleted": W.ENTITLEMENT_DELETED,
}
_CATALOGUE_DOCUMENTS: dict[type[Any], Callable[[Any], dict[str, Any]]] = {
    Product: product_document,
    Policy: policy_document,
    Entitlement: entitlement_document,
}


def webhook_type(event: LoggedEvent) -> W | None:
    return WEBHOOK_TYPES.get(event.event_type)


def message_id(event_id: UUID) -> str:
    """`evt_` + 32 lowercase hex: the same for every endpoint and every attempt."""
    return "evt_" + event_id.hex


def order_key(event: LoggedEvent) -> UUID:
    """Deliveries with one key reach an endpoint strictly in order: the license for
    license, machine and validation events, else the resource itself."""
    if event.stream_type == "validation":
        return UUID(event.data["license_id"])
    return event.stream_id


def render_envelope(
    message: str, event_type: str, created_at: datetime, sequence: int, data: dict[str, Any]
) -> bytes:
    """Compact JSON, rendered once and stored: every attempt sends these bytes."""
    return orjson.dumps(
        {
            "id": message,
            "type": event_type,
            "createdAt": iso_ms(created_at),
            "sequence": sequence,
            "data": data,
        }
    )


@dataclass(frozen=True)
class Message:
    id: str
    type: W
    order_key: UUID
    position: int
    body: bytes
    license_id: UUID | None


class StateAfterEvents:
    """Aggregates as they stood right after each event of a batch, in log order."""

    def __init__(self, app: LedgerApplication, tenant_id: UUID) -> None:
        self._app = app
        self._tenant = tenant_id
        self._cache: dict[UUID, Any] = {}

    def after(self, event: LoggedEvent) -> Any:
        aggregate = self._cache.get(event.stream_id)
        with tenant_scope(self._tenant):
            if aggregate is not None and aggregate.version == event.version - 1:
                stored = stored_event_from_row(vars_of(event))
                domain_event = self._app.mapper.to_domain_event(stored)
                aggregate = project_aggregate(aggregate, [domain_event])
            else:
                aggregate = self._app.repository.get(event.stream_id, version=event.version)
        self._cache[event.stream_id] = aggregate
        return aggregate


def vars_of(event: LoggedEvent) -> dict[str, Any]:
    return {
        "stream_id": event.stream_id,
        "version": event.version,
        "event_type": event.event_type,
        "schema_version": event.schema_version,
        "data": event.data,
        "occurred_at": event.occurred_at,
    }


class MessageRenderer:
    """Renders the webhook message of each event (None when it has no webhook type)."""

    def __init__(self, app: LedgerApplication, tenant_id: UUID, curs: Cursor[DictRow]) -> None:
        self._state = StateAfterEvents(app, tenant_id)
        self._curs = curs
        self._policies: dict[str, dict[str, Any]] = {}

    def render(self, event: LoggedEvent) -> Message | None:
        kind = webhook_type(event)
        if kind is None:
            return None
        data = self._data(event, kind)
        license_id = _license_of(event)
        return Message(
            id=message_id(event.event_id),
            type=kind,
            order_key=order_key(event),
            position=event.position,
            body=render_envelope(
                message_id(event.event_id), str(kind), event.occurred_at, event.position, data
            ),
            license_id=license_id,
        )

    def _data(self, event: LoggedEvent, kind: W) -> dict[str, Any]:
        if event.stream_type == "validation":
            return _validation_data(event, kind)
        aggregate = self._state.after(event)
        if isinstance(aggregate, License):
            if kind.startswith("machine."):
                machine_id = UUID(event.data["machine_id"])
                machine = next(m for m in aggregate.machines if m.id == machine_id)
                return machine_document(machine)
            return self._license_data(aggregate, event)
        render = _CATALOGUE_DOCUMENTS.get(type(aggregate))
        return {"id": str(event.stream_id)} if render is None else render(aggregate)

    def _license_data(self, license_: License, event: LoggedEvent) -> dict[str, Any]:
        policy = self._policy(license_.policy_id)
        machines = [machine_document(m) for m in license_.active_machines]
        data = license_view(license_document(license_), policy, machines, event.occurred_at)
        if "checkout_id" in event.data:
            data["checkout"] = {
                "id": event.data["checkout_id"],
                "kid": event.data.get("kid"),
                "fingerprint": event.data.get("fingerprint"),
                "expiresAt": _iso_text(event.data.get("expires_at")),
                # The file itself (license.checked_out / license.file_regenerated carry it).
                "certificate": event.data.get("certificate"),
                "fileExpiresAt": _iso_text(event.data.get("file_expires_at")),
            }
        return data

    def _policy(self, policy_id: str) -> dict[str, Any]:
        """The policy's current document (a license view embeds its policy)."""
        if policy_id not in self._policies:
            row = self._curs.execute(
                "SELECT doc FROM policies WHERE id = %s", (UUID(policy_id),)
            ).fetchone()
            self._policies[policy_id] = {"entitlements": []} if row is None else dict(row["doc"])
        return self._policies[policy_id]


def _iso_text(value: str | None) -> str | None:
    return None if value is None else iso_ms(datetime.fromisoformat(value))


def _license_of(event: LoggedEvent) -> UUID | None:
    if event.stream_type == "license":
        return event.stream_id
    if event.stream_type == "validation":
        return UUID(event.data["license_id"])
    return None


def _validation_data(event: LoggedEvent, kind: W) -> dict[str, Any]:
    data = event.data
    return {
        "valid": kind == W.VALIDATION_SUCCESS,
        "code": data.get("code"),
        "licenseId": data.get("license_id"),
        "machineId": data.get("machine_id"),
        "fingerprint": data.get("fingerprint"),
        "missing": list(data.get("missing") or []),
        "requestId": data.get("request_id"),
    }
