"""`/policies`: the rules licenses follow, and the entitlements they grant (API.md §4)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from typing import cast
from uuid import UUID

import falcon

from api.operations import operation
from api.requests import command_context
from api.requests import given_fields
from api.requests import list_params
from api.requests import query_uuid
from api.resources.reads import found
from api.resources.reads import reading
from api.resources.reads import respond_one
from api.resources.reads import respond_page
from api.schemas import policies as schemas
from api.schemas.common import LIST_QUERY
from api.schemas.common import UUID as UUID_SCHEMA
from api.schemas.common import one
from api.schemas.common import page
from api.services import Services
from ledger.commands import catalogue
from ledger.domain.checks import unique_codes
from ledger.domain.codes import Scope
from ledger.domain.errors import Conflict
from ledger.domain.errors import ReferenceNotFound
from ledger.domain.templates import DEFAULTS
from ledger.domain.templates import PolicySettings
from ledger.domain.templates import camel
from projections.queries import count_live
from projections.queries import get_document
from projections.queries import list_documents
from projections.queries import missing_entitlement_codes

_FIELDS = {"name": "name", "template": "template", "metadata": "metadata"}
_SETTINGS = {camel(name): name for name in DEFAULTS}


def _settings(body: Mapping[str, Any]) -> PolicySettings:
    """The tunable fields the body gives, as `PolicySettings` (they win over a template)."""
    return cast(PolicySettings, given_fields(body, _SETTINGS))


def _read(services: Services, req: falcon.Request, policy_id: UUID) -> dict[str, Any]:
    with reading(services, req) as curs:
        return found(get_document(curs, "policies", policy_id), "policy")


def _unknown_codes(missing: list[str]) -> ReferenceNotFound:
    return ReferenceNotFound(
        f"No entitlement has the code(s): {', '.join(missing)}", {"missing": missing}
    )


class PolicyCollection:
    def __init__(self, services: Services) -> None:
        self._services = services

    @operation(
        summary="Create a policy",
        description="A `template` fills defaults; fields given alongside it win. "
        "A `productId` that names no product is 422 REFERENCE_NOT_FOUND.",
        scope=Scope.POLICIES_WRITE,
        body=schemas.CREATE,
        responses={201: one(schemas.POLICY)},
    )
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = req.context.body
        policy = catalogue.create_policy(
            self._services.ledger,
            command_context(req, self._services),
            policy_id=self._services.new_id(),
            product_id=UUID(body["productId"]),
            name=body["name"],
            template=body.get("template"),
            settings=_settings(body),
            metadata=body.get("metadata"),
        )
        respond_one(resp, _read(self._services, req, policy.id), status=201)

    @operation(
        summary="List policies",
        scope=Scope.POLICIES_READ,
        query={**LIST_QUERY, "productId": {**UUID_SCHEMA, "description": "Only this product's."}},
        responses={200: page(schemas.POLICY)},
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        cursor, limit = list_params(req)
        product_id = query_uuid(req, "productId")
        equals = None if product_id is None else {"product_id": product_id}
        with reading(self._services, req) as curs:
            listed = list_documents(curs, "policies", cursor=cursor, limit=limit, equals=equals)
        respond_page(resp, listed)


class PolicyItem:
    def __init__(self, services: Services) -> None:
        self._services = services

    @operation(
        summary="Get a policy", scope=Scope.POLICIES_READ, responses={200: one(schemas.POLICY)}
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response, policy_id: UUID) -> None:
        respond_one(resp, _read(self._services, req, policy_id))

    @operation(
        summary="Update a policy",
        description="A given `template` re-applies its values, except fields given alongside. "
        "Every license on the policy follows the change from now on.",
        scope=Scope.POLICIES_WRITE,
        body=schemas.UPDATE,
        responses={200: one(schemas.POLICY)},
    )
    def on_patch(self, req: falcon.Request, resp: falcon.Response, policy_id: UUID) -> None:
        body = req.context.body
        catalogue.update_policy(
            self._services.ledger,
            command_context(req, self._services),
            policy_id,
            given_fields(body, _FIELDS),
            settings=_settings(body),
        )
        respond_one(resp, _read(self._services, req, policy_id))

    @operation(
        summary="Delete a policy (soft: its history stays in the ledger)",
        description="Refused (409) while live licenses use the policy.",
        scope=Scope.POLICIES_WRITE,
        responses={204: None},
    )
    def on_delete(self, req: falcon.Request, resp: falcon.Response, policy_id: UUID) -> None:
        with reading(self._services, req) as curs:
            found(get_document(curs, "policies", policy_id), "policy")
            in_use = count_live(curs, "licenses", "policy_id", policy_id)
        if in_use:
            msg = f"The policy is used by {in_use} licenses; move or delete them first."
            raise Conflict(msg, {"licenses": in_use})
        catalogue.delete_policy(
            self._services.ledger, command_context(req, self._services), policy_id
        )
        resp.status = 204


class PolicyEntitlements:
    """`/policies/{id}/entitlements`: attach (POST) or detach (DELETE) codes."""

    def __init__(self, services: Services) -> None:
        self._services = services

    @operation(
        summary="Attach entitlements to a policy",
        description="Every code must name an entitlement (else 422 REFERENCE_NOT_FOUND with "
        "`details.missing`); codes already attached are left as they are.",
        scope=Scope.POLICIES_WRITE,
        body=schemas.CODES_BODY,
        responses={200: one(schemas.POLICY)},
    )
    def on_post(self, req: falcon.Request, resp: falcon.Response, policy_id: UUID) -> None:
        codes = unique_codes(req.context.body["codes"])
        with reading(self._services, req) as curs:
            found(get_document(curs, "policies", policy_id), "policy")
            missing = missing_entitlement_codes(curs, codes)
        if missing:
            raise _unknown_codes(missing)
        ctx = command_context(req, self._services)
        catalogue.attach_policy_entitlements(self._services.ledger, ctx, policy_id, codes)
        respond_one(resp, _read(self._services, req, policy_id))

    @operation(
        summary="Detach entitlements from a policy",
        description="A code must name an entitlement or be attached to the policy (so the "
        "code of a since-deleted entitlement can still be detached); else 422 "
        "REFERENCE_NOT_FOUND with `details.missing`.",
        scope=Scope.POLICIES_WRITE,
        body=schemas.CODES_BODY,
        responses={200: one(schemas.POLICY)},
    )
    def on_delete(self, req: falcon.Request, resp: falcon.Response, policy_id: UUID) -> None:
        codes = unique_codes(req.context.body["codes"])
        with reading(self._services, req) as curs:
            policy = found(get_document(curs, "policies", policy_id), "policy")
            attached = set(policy["entitlements"])
            missing = [c for c in missing_entitlement_codes(curs, codes) if c not in attached]
        if missing:
            raise _unknown_codes(missing)
        ctx = command_context(req, self._services)
        catalogue.detach_policy_entitlements(self._services.ledger, ctx, policy_id, codes)
        respond_one(resp, _read(self._services, req, policy_id))
