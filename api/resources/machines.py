"""`/machines`: activation, reads, updates, deactivation and heartbeats (API.md §4).

Client apps call with `Authorization: License <key>`, for the machines of that one
license; vendor backends with an API key and the `machines:*` scopes. Another
tenant's machine is a 404 (row-level security hides it); another license's machine in
the same environment is a 403 for a License key (API.md §2: "a License key used outside
its own license").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

import falcon

from api.auth import Auth
from api.auth import Principal
from api.auth import principal_of
from api.client_ip import client_ip
from api.client_ip import parse_networks
from api.errors import ApiError
from api.errors import validation_error
from api.operations import operation
from api.requests import command_context
from api.requests import list_params
from api.requests import query_uuid
from api.resources.reads import found
from api.resources.reads import reading
from api.resources.reads import respond_one
from api.resources.reads import respond_page
from api.schemas import machines as schemas
from api.schemas.common import LIST_QUERY
from api.schemas.common import UUID as UUID_SCHEMA
from api.schemas.common import one
from api.schemas.common import page
from api.services import Services
from ledger.commands import machines
from ledger.commands.base import CommandContext
from ledger.domain.codes import ErrorCode
from ledger.domain.codes import Scope
from ledger.store import local_changes
from projections import heartbeats
from projections.machines import MachineRow
from projections.machines import ReadModelFingerprints
from projections.machines import get_machine
from projections.machines import list_machines

_LICENSE_KEY_ONLY_OWN = "This license key cannot act on another license's machines."


def _forbidden(message: str, details: Mapping[str, Any] | None = None) -> ApiError:
    return ApiError(ErrorCode.FORBIDDEN, message, details=details)


def _require_scope(principal: Principal, scope: Scope) -> None:
    """API keys need `scope`; License keys may not call this at all."""
    if principal.kind != "api_key":
        raise _forbidden("This endpoint needs an API key, not a license key.")
    if not principal.allows(scope):
        raise _forbidden(f"This API key lacks the {scope} scope.", {"scope": str(scope)})


def _may_act_on(principal: Principal, license_id: UUID, scope: Scope) -> None:
    """A License key on its own license's machines; an API key with `scope`."""
    if principal.kind == "license":
        if principal.id != str(license_id):
            raise _forbidden(_LICENSE_KEY_ONLY_OWN)
        return
    _require_scope(principal, scope)


class _MachineResource:
    auth = Auth.LICENSE_OR_API_KEY

    def __init__(self, services: Services) -> None:
        self._services = services

    def _row(self, req: falcon.Request, machine_id: UUID) -> MachineRow | None:
        with reading(self._services, req) as curs:
            return get_machine(curs, machine_id, self._services.clock())

    def _owned(self, req: falcon.Request, machine_id: UUID, scope: Scope) -> MachineRow:
        row = found(self._row(req, machine_id), "machine")
        _may_act_on(principal_of(req), row.license_id, scope)
        return row

    def _respond(
        self, req: falcon.Request, resp: falcon.Response, machine_id: UUID, status: int = 200
    ) -> None:
        respond_one(resp, found(self._row(req, machine_id), "machine").document, status)


class MachineCollection(_MachineResource):
    def __init__(self, services: Services) -> None:
        super().__init__(services)
        self._proxies = parse_networks(services.config.trusted_proxies)

    def _license_of(self, req: falcon.Request, body: Mapping[str, Any]) -> UUID:
        principal = principal_of(req)
        given = body.get("licenseId")
        if principal.kind == "license":
            assert principal.id is not None
            if given is not None and given != principal.id:
                raise _forbidden(_LICENSE_KEY_ONLY_OWN)
            return UUID(principal.id)
        _require_scope(principal, Scope.MACHINES_WRITE)
        if given is None:
            raise validation_error("licenseId is required with an API key", ["licenseId"])
        return UUID(given)

    @operation(
        summary="Activate a machine",
        description=(
            "License key auth (the SDK's `activate`), or an API key with machines:write"
            " and `licenseId`. The same fingerprint already active on the license answers"
            " 200 with that machine."
        ),
        body=schemas.ACTIVATE,
        responses={201: one(schemas.MACHINE), 200: one(schemas.MACHINE)},
    )
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = req.context.body
        license_id = self._license_of(req, body)
        ctx = command_context(req, self._services)
        details = machines.MachineDetails(
            fingerprint=body["fingerprint"],
            name=body.get("name"),
            platform=body.get("platform"),
            hostname=body.get("hostname"),
            cores=body.get("cores"),
            metadata=body.get("metadata") or {},
            ip_address=client_ip(req, self._proxies),
        )
        activation = machines.activate_machine(
            self._services.ledger,
            ctx,
            license_id=license_id,
            machine_id=self._services.new_id(),
            details=details,
            fingerprints=ReadModelFingerprints(self._services.ledger, ctx.tenant_id),
        )
        self._respond(req, resp, activation.machine.id, 201 if activation.created else 200)

    @operation(
        summary="List machines",
        description="Active machines, optionally of one license.",
        scope=Scope.MACHINES_READ,
        query={"licenseId": UUID_SCHEMA, **LIST_QUERY},
        responses={200: page(schemas.MACHINE)},
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        cursor, limit = list_params(req)
        license_id = query_uuid(req, "licenseId")
        with reading(self._services, req) as curs:
            listed = list_machines(
                curs,
                cursor=cursor,
                limit=limit,
                now=self._services.clock(),
                license_id=license_id,
            )
        respond_page(resp, listed)


class MachineItem(_MachineResource):
    @operation(
        summary="Get a machine",
        description="License key of its license, or an API key with machines:read.",
        responses={200: one(schemas.MACHINE)},
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response, machine_id: UUID) -> None:
        respond_one(resp, self._owned(req, machine_id, Scope.MACHINES_READ).document)

    @operation(
        summary="Update a machine's name or metadata",
        scope=Scope.MACHINES_WRITE,
        body=schemas.UPDATE,
        responses={200: one(schemas.MACHINE)},
    )
    def on_patch(self, req: falcon.Request, resp: falcon.Response, machine_id: UUID) -> None:
        row = self._owned(req, machine_id, Scope.MACHINES_WRITE)
        body = req.context.body
        machines.update_machine(
            self._services.ledger,
            command_context(req, self._services),
            license_id=row.license_id,
            machine_id=machine_id,
            **{key: body[key] for key in ("name", "metadata") if key in body},
        )
        self._respond(req, resp, machine_id)

    @operation(
        summary="Deactivate a machine (frees its seat)",
        description="License key of its license, or an API key with machines:write.",
        responses={204: None},
    )
    def on_delete(self, req: falcon.Request, resp: falcon.Response, machine_id: UUID) -> None:
        row = self._owned(req, machine_id, Scope.MACHINES_WRITE)
        machines.deactivate_machine(
            self._services.ledger,
            command_context(req, self._services),
            license_id=row.license_id,
            machine_id=machine_id,
        )
        resp.status = 204

    @operation(
        summary="Send a heartbeat",
        description=(
            "License key of its license, or an API key with machines:write. Empty body."
            " An ALIVE machine's ping records no event; the first ping and a revival do."
        ),
        responses={200: one(schemas.MACHINE)},
    )
    def on_post_heartbeat(
        self, req: falcon.Request, resp: falcon.Response, machine_id: UUID
    ) -> None:
        row = self._owned(req, machine_id, Scope.MACHINES_WRITE)
        self._ping(req, row.license_id, machine_id, command_context(req, self._services))
        self._respond(req, resp, machine_id)

    def _ping(
        self, req: falcon.Request, license_id: UUID, machine_id: UUID, ctx: CommandContext
    ) -> None:
        """One UPDATE for an ALIVE machine on time; a command for a state change."""
        ledger = self._services.ledger
        if self._touch(req, license_id, machine_id, ctx):
            return
        recorded = machines.record_heartbeat(
            ledger,
            ctx,
            license_id=license_id,
            machine_id=machine_id,
            overdue=lambda: heartbeats.is_overdue(ledger, ctx.tenant_id, machine_id, ctx.at),
        )
        if not recorded:
            # Another ping made it ALIVE between our touch and the command.
            self._touch(req, license_id, machine_id, ctx)

    def _touch(
        self, req: falcon.Request, license_id: UUID, machine_id: UUID, ctx: CommandContext
    ) -> bool:
        with reading(self._services, req) as curs:
            touched = heartbeats.touch(curs, machine_id, ctx.at)
        if touched:  # committed: the machine's last-seen time moved (validation reads it)
            local_changes.announce([local_changes.license_changed(ctx.tenant_id, license_id)])
        return touched
