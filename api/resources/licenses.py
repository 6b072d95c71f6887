"""`/licenses`: issue, list, read (by id or by key), change and delete (API.md §4).

The lifecycle actions and the license's own entitlements are in `license_actions.py`.
Every response is the license view (projections/licenses.py `license_view`): the
license with its policy and active machines, never its key or any hash, except that the
201 of `POST /licenses` carries the key, once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC
from datetime import datetime
from typing import Any
from uuid import UUID

import falcon

from api.errors import validation_error
from api.operations import operation
from api.requests import command_context
from api.requests import given_fields
from api.requests import list_params
from api.requests import query_uuid
from api.requests import timestamp
from api.resources.as_of import AS_OF_QUERY
from api.resources.as_of import as_of_param
from api.resources.as_of import license_as_of_view
from api.resources.reads import found
from api.resources.reads import reading
from api.resources.reads import respond_one
from api.resources.reads import respond_page
from api.schemas import licenses as schemas
from api.schemas.common import LIST_QUERY
from api.schemas.common import UUID as UUID_SCHEMA
from api.schemas.common import one
from api.schemas.common import page
from api.services import Services
from ledger.commands import licenses
from ledger.crypto import keyed_hash
from ledger.domain.base import UNSET
from ledger.domain.checks import unique_codes
from ledger.domain.codes import LicenseStatus
from ledger.domain.codes import Scope
from ledger.domain.errors import NotFound
from ledger.domain.errors import ReferenceNotFound
from projections.queries import get_license
from projections.queries import get_license_by_key_hash
from projections.queries import list_licenses
from projections.queries import missing_entitlement_codes

_FIELDS = {
    "name": "name",
    "maxMachinesOverride": "max_machines_override",
    "maxUsesOverride": "max_uses_override",
    "userEmail": "user_email",
    "userName": "user_name",
    "metadata": "metadata",
}
# Expiry dates outside this range are typing mistakes, and keeping them inside keeps a
# renewal (expiry + durationDays, at most 100 years) a representable date.
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(9000, 1, 1, tzinfo=UTC)
# Longer than any `PREFIX-XXXX-XXXX-XXXX-XXXX`: not a key, not worth hashing.
_MAX_KEY_LENGTH = 128
_STATUSES = frozenset(str(s) for s in LicenseStatus)


def moment(body: Mapping[str, Any], field: str) -> datetime | None:
    """A date-time field of a body (its format already checked), within sane years."""
    value = timestamp(body[field])
    if value is not None and not _EARLIEST <= value < _LATEST:
        raise validation_error(f"{field} must be a date from 1970 to 8999", [field])
    return value


def read_license(services: Services, req: falcon.Request, license_id: UUID) -> dict[str, Any]:
    with reading(services, req) as curs:
        return found(get_license(curs, license_id, services.clock()), "license")


def unknown_codes(missing: list[str]) -> ReferenceNotFound:
    return ReferenceNotFound(
        f"No entitlement has the code(s): {', '.join(missing)}", {"missing": missing}
    )


def _status_param(req: falcon.Request) -> str | None:
    status = req.get_param("status")
    if status is not None and status not in _STATUSES:
        allowed = ", ".join(str(s) for s in LicenseStatus)
        raise validation_error(f"status must be one of: {allowed}", ["status"])
    return status


class LicenseCollection:
    def __init__(self, services: Services) -> None:
        self._services = services

    @operation(
        summary="Issue a license",
        description="Answers the license **with its `key`**, the only time the key is "
        "returned. `expiresAt` absent: the policy's `durationDays` from now; null: never. "
        "Unknown `productId`/`policyId`/entitlement codes are 422 REFERENCE_NOT_FOUND "
        "(`details.missing` lists the codes); a policy of another product is 422 "
        "BUSINESS_RULE_VIOLATION.",
        scope=Scope.LICENSES_WRITE,
        body=schemas.CREATE,
        responses={201: one(schemas.ISSUED_LICENSE)},
    )
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = req.context.body
        codes = unique_codes(body.get("entitlements", []))
        if codes:
            with reading(self._services, req) as curs:
                missing = missing_entitlement_codes(curs, codes)
            if missing:
                raise unknown_codes(missing)
        issued = licenses.issue_license(
            self._services.ledger,
            command_context(req, self._services),
            license_id=self._services.new_id(),
            product_id=UUID(body["productId"]),
            policy_id=UUID(body["policyId"]),
            pepper=self._services.pepper,
            # Seals the offline file key, so checkouts can be encrypt: true (docs/offline.md).
            master_key=self._services.master_key,
            expires_at=moment(body, "expiresAt") if "expiresAt" in body else UNSET,
            entitlements=codes,
            **given_fields(body, _FIELDS),
        )
        view = read_license(self._services, req, issued.license.id)
        # The only response that carries the key: no cache may keep a copy.
        resp.set_header("Cache-Control", "no-store")
        respond_one(resp, {**view, "key": issued.key}, status=201)

    @operation(
        summary="List licenses",
        description="`status=expired` and `status=active` are decided by the time of the "
        "request (an active license whose `expiresAt` has passed is `expired`).",
        scope=Scope.LICENSES_READ,
        query={
            **LIST_QUERY,
            "productId": {**UUID_SCHEMA, "description": "Only this product's."},
            "policyId": {**UUID_SCHEMA, "description": "Only this policy's."},
            "status": schemas.STATUS_QUERY,
            "userEmail": {"type": "string", "description": "Exact match."},
        },
        responses={200: page(schemas.LICENSE)},
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        cursor, limit = list_params(req)
        product_id = query_uuid(req, "productId")
        policy_id = query_uuid(req, "policyId")
        status = _status_param(req)
        with reading(self._services, req) as curs:
            listed = list_licenses(
                curs,
                cursor=cursor,
                limit=limit,
                now=self._services.clock(),
                product_id=product_id,
                policy_id=policy_id,
                status=status,
                user_email=req.get_param("userEmail"),
            )
        respond_page(resp, listed)


class LicenseItem:
    def __init__(self, services: Services) -> None:
        self._services = services

    @operation(
        summary="Get a license, with its policy and active machines",
        scope=Scope.LICENSES_READ,
        query=AS_OF_QUERY,
        responses={200: one(schemas.LICENSE)},
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response, license_id: UUID) -> None:
        as_of = as_of_param(req, self._services)
        if as_of is not None:
            respond_one(resp, license_as_of_view(self._services, req, license_id, as_of))
            return
        respond_one(resp, read_license(self._services, req, license_id))

    @operation(
        summary="Update a license",
        description="A future `expiresAt` takes an expired license back to `active`. "
        "`policyId` must name a policy of the license's product (else 422). Revoked and "
        "banned licenses are final: 409 CONFLICT.",
        scope=Scope.LICENSES_WRITE,
        body=schemas.UPDATE,
        responses={200: one(schemas.LICENSE)},
    )
    def on_patch(self, req: falcon.Request, resp: falcon.Response, license_id: UUID) -> None:
        body = req.context.body
        changes = given_fields(body, _FIELDS)
        if "expiresAt" in body:
            changes["expires_at"] = moment(body, "expiresAt")
        if "policyId" in body:
            changes["policy_id"] = UUID(body["policyId"])
        ctx = command_context(req, self._services)
        licenses.update_license(self._services.ledger, ctx, license_id, changes)
        respond_one(resp, read_license(self._services, req, license_id))

    @operation(
        summary="Delete a license (soft: its history stays in the ledger)",
        description="Its key stops resolving at once (validation answers NOT_FOUND).",
        scope=Scope.LICENSES_WRITE,
        responses={204: None},
    )
    def on_delete(self, req: falcon.Request, resp: falcon.Response, license_id: UUID) -> None:
        ctx = command_context(req, self._services)
        licenses.delete_license(self._services.ledger, ctx, license_id)
        resp.status = 204


class LicenseByKey:
    """`GET /licenses/by-key/{key}`: the key (URL-encoded) is hashed, never stored or shown."""

    def __init__(self, services: Services) -> None:
        self._services = services

    @operation(
        summary="Get a license by its key, with its policy and active machines",
        scope=Scope.LICENSES_READ,
        responses={200: one(schemas.LICENSE)},
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response, key: str) -> None:
        if not 0 < len(key) <= _MAX_KEY_LENGTH:
            raise NotFound("license not found")
        key_hash = bytes.fromhex(keyed_hash(self._services.pepper, key))
        with reading(self._services, req) as curs:
            view = get_license_by_key_hash(curs, key_hash, self._services.clock())
        respond_one(resp, found(view, "license"))
