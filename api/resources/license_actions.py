"""`POST /licenses/{id}/<action>` and `/licenses/{id}/entitlements` (API.md §4).

Each action is a Falcon suffix responder of one resource and answers 200 with the
license after the change. The transition rules live in the License aggregate; an action
its status does not allow (anything on a revoked or banned license) is 409 CONFLICT.
"""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

import falcon

from api.operations import operation
from api.requests import command_context
from api.resources.licenses import moment
from api.resources.licenses import read_license
from api.resources.licenses import unknown_codes
from api.resources.reads import found
from api.resources.reads import reading
from api.resources.reads import respond_one
from api.schemas import licenses as schemas
from api.schemas.common import one
from api.services import Services
from ledger.application import LedgerApplication
from ledger.commands import licenses
from ledger.commands.base import CommandContext
from ledger.domain.checks import unique_codes
from ledger.domain.codes import Scope
from projections.queries import get_license
from projections.queries import missing_entitlement_codes

# Path segment -> Falcon route suffix (`on_post_<suffix>`).
ACTIONS = {
    "suspend": "suspend",
    "reinstate": "reinstate",
    "revoke": "revoke",
    "ban": "ban",
    "renew": "renew",
    "usage": "usage",
    "reset-usage": "reset_usage",
}
_LICENSE = {200: one(schemas.LICENSE)}
_TERMINAL = " Revoked and banned licenses are final: 409 CONFLICT."

Command = Callable[[LedgerApplication, CommandContext, UUID], object]


class LicenseActions:
    def __init__(self, services: Services) -> None:
        self._services = services

    def _run(
        self, req: falcon.Request, resp: falcon.Response, license_id: UUID, command: Command
    ) -> None:
        command(self._services.ledger, command_context(req, self._services), license_id)
        respond_one(resp, read_license(self._services, req, license_id))

    @operation(
        summary="Suspend a license",
        description="From `active` only; anything else is 409 CONFLICT.",
        scope=Scope.LICENSES_WRITE,
        responses=_LICENSE,
    )
    def on_post_suspend(self, req: falcon.Request, resp: falcon.Response, license_id: UUID) -> None:
        self._run(req, resp, license_id, licenses.suspend_license)

    @operation(
        summary="Reinstate a suspended license",
        description="From `suspended` only; anything else is 409 CONFLICT.",
        scope=Scope.LICENSES_WRITE,
        responses=_LICENSE,
    )
    def on_post_reinstate(
        self, req: falcon.Request, resp: falcon.Response, license_id: UUID
    ) -> None:
        self._run(req, resp, license_id, licenses.reinstate_license)

    @operation(
        summary="Revoke a license (final)",
        description="From `active`, `suspended` or `expired`." + _TERMINAL,
        scope=Scope.LICENSES_WRITE,
        responses=_LICENSE,
    )
    def on_post_revoke(self, req: falcon.Request, resp: falcon.Response, license_id: UUID) -> None:
        self._run(req, resp, license_id, licenses.revoke_license)

    @operation(
        summary="Ban a license (final)",
        description="From any status that is not final." + _TERMINAL,
        scope=Scope.LICENSES_WRITE,
        responses=_LICENSE,
    )
    def on_post_ban(self, req: falcon.Request, resp: falcon.Response, license_id: UUID) -> None:
        self._run(req, resp, license_id, licenses.ban_license)

    @operation(
        summary="Renew a license",
        description="Sets `expiresAt` to the given (future) time, or extends it by the "
        "policy's `durationDays` from max(now, expiresAt); 422 BUSINESS_RULE_VIOLATION "
        "when neither is available. An expired license becomes `active`; a suspended one "
        "stays suspended." + _TERMINAL,
        scope=Scope.LICENSES_WRITE,
        body=schemas.RENEW,
        body_required=False,
        responses=_LICENSE,
    )
    def on_post_renew(self, req: falcon.Request, resp: falcon.Response, license_id: UUID) -> None:
        body = req.context.body
        expires_at = moment(body, "expiresAt") if "expiresAt" in body else None
        self._run(
            req,
            resp,
            license_id,
            lambda app, ctx, lid: licenses.renew_license(app, ctx, lid, expires_at),
        )

    @operation(
        summary="Count metered uses",
        description="Adds `increment` to `usesCount`; past the effective `maxUses` it is "
        "422 USAGE_LIMIT_EXCEEDED (`details: {max, current}`) and nothing is counted. "
        "Exact under concurrency." + _TERMINAL,
        scope=Scope.LICENSES_WRITE,
        body=schemas.USAGE,
        responses=_LICENSE,
    )
    def on_post_usage(self, req: falcon.Request, resp: falcon.Response, license_id: UUID) -> None:
        increment: int = req.context.body["increment"]
        self._run(
            req,
            resp,
            license_id,
            lambda app, ctx, lid: licenses.increment_usage(app, ctx, lid, increment),
        )

    @operation(
        summary="Reset the usage count to zero",
        scope=Scope.LICENSES_WRITE,
        description=_TERMINAL.strip(),
        responses=_LICENSE,
    )
    def on_post_reset_usage(
        self, req: falcon.Request, resp: falcon.Response, license_id: UUID
    ) -> None:
        self._run(req, resp, license_id, licenses.reset_usage)


class LicenseEntitlements:
    """`/licenses/{id}/entitlements`: attach (POST) or detach (DELETE) the license's own codes."""

    def __init__(self, services: Services) -> None:
        self._services = services

    @operation(
        summary="Attach entitlements to a license",
        description="Every code must name an entitlement (else 422 REFERENCE_NOT_FOUND with "
        "`details.missing`); codes already attached are left as they are. The license's "
        "effective entitlements are its policy's and its own." + _TERMINAL,
        scope=Scope.LICENSES_WRITE,
        body=schemas.CODES_BODY,
        responses=_LICENSE,
    )
    def on_post(self, req: falcon.Request, resp: falcon.Response, license_id: UUID) -> None:
        codes = unique_codes(req.context.body["codes"])
        with reading(self._services, req) as curs:
            # The license first: another tenant's id is a 404 whatever the codes are.
            found(get_license(curs, license_id, self._services.clock()), "license")
            missing = missing_entitlement_codes(curs, codes)
        if missing:
            raise unknown_codes(missing)
        ctx = command_context(req, self._services)
        licenses.attach_license_entitlements(self._services.ledger, ctx, license_id, codes)
        respond_one(resp, read_license(self._services, req, license_id))

    @operation(
        summary="Detach entitlements from a license",
        description="A code must name an entitlement or be effective on the license (so "
        "the code of a since-deleted entitlement can still be detached); else 422 "
        "REFERENCE_NOT_FOUND with `details.missing`. Codes granted by the policy stay "
        "effective: detach them from the policy." + _TERMINAL,
        scope=Scope.LICENSES_WRITE,
        body=schemas.CODES_BODY,
        responses=_LICENSE,
    )
    def on_delete(self, req: falcon.Request, resp: falcon.Response, license_id: UUID) -> None:
        codes = unique_codes(req.context.body["codes"])
        with reading(self._services, req) as curs:
            view = found(get_license(curs, license_id, self._services.clock()), "license")
            attached = set(view["entitlements"])
            missing = [c for c in missing_entitlement_codes(curs, codes) if c not in attached]
        if missing:
            raise unknown_codes(missing)
        ctx = command_context(req, self._services)
        licenses.detach_license_entitlements(self._services.ledger, ctx, license_id, codes)
        respond_one(resp, read_license(self._services, req, license_id))
