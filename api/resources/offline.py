"""Offline license files (API.md §7): checkout, the `.lic` download, current checkouts.

Checking out needs `licenses:write`: it records a `license.checked_out` event and hands
out a file that grants offline use for up to 90 days, which a read-only key should not
be able to mint. Listing checkouts needs `licenses:read`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import falcon

from api.operations import operation
from api.requests import command_context
from api.requests import list_params
from api.resources.reads import found
from api.resources.reads import reading
from api.resources.reads import respond_one
from api.resources.reads import respond_page
from api.schemas import offline as schemas
from api.schemas.common import LIST_QUERY
from api.schemas.common import one
from api.schemas.common import page
from api.services import Services
from ledger.commands.checkouts import check_out
from ledger.commands.checkouts import checkout_license
from ledger.domain.codes import Scope
from ledger.domain.license_checkouts import Checkout
from ledger.domain.timestamps import iso_ms
from ledger.offline.certificate import FILE_NAME
from ledger.offline.certificate import MEDIA_TYPE
from projections.checkout_facts import CheckoutFacts
from projections.checkout_facts import read_checkout_facts
from projections.offline import checked_out_license_view
from projections.offline import checkout_inputs
from projections.offline import checkout_row
from projections.offline import list_checkouts
from projections.queries import get_license

_REFUSALS = (
    "400 CHECKOUT_TTL_INVALID (ttl outside 3600..min(7776000, offlineMaxDays x 86400)); "
    "422 OFFLINE_NOT_ALLOWED; 409 LICENSE_SUSPENDED|REVOKED|BANNED|EXPIRED when the "
    "license could not validate; 422 BUSINESS_RULE_VIOLATION with details.reason "
    "FINGERPRINT_NOT_FOUND when the fingerprint is not an active machine of the license."
)


def _check_out(services: Services, req: falcon.Request, license_id: UUID) -> CheckedOut:
    """The file and the license it was decided from (the response's `license`)."""
    body = req.context.body
    ctx = command_context(req, services)
    if not body.get("encrypt", False) and body.get("licenseKey") is None:
        # From the read models: three statements (ledger.commands.checkouts.check_out).
        def read() -> CheckoutFacts | None:
            with services.ledger.autocommit() as curs:
                return read_checkout_facts(curs, ctx.tenant_id, license_id)

        issued = check_out(
            services.ledger,
            ctx,
            license_id,
            read,
            checkout_id=services.new_id(),
            fingerprint=body.get("fingerprint"),
            ttl=body.get("ttl"),
            master_key=services.master_key,
            row=lambda checkout: checkout_row(license_id, checkout),
        )
        return CheckedOut(
            issued.certificate,
            issued.checkout,
            issued.expires_at,
            issued.facts.license_view,
        )
    # Encrypted files need the license's sealed file key: the aggregate's command.
    with reading(services, req) as curs:
        inputs = checkout_inputs(curs, license_id)
    file = checkout_license(
        services.ledger,
        ctx,
        license_id,
        checkout_id=services.new_id(),
        fingerprint=body.get("fingerprint"),
        ttl=body.get("ttl"),
        encrypt=body.get("encrypt", False),
        license_key=body.get("licenseKey"),
        master_key=services.master_key,
        pepper=services.pepper,
        signing_key=inputs.signing_key,
        policy_rules=inputs.rules,
    )

    def view(now: datetime) -> dict[str, Any]:
        policy = inputs.policy
        if policy is not None and policy["id"] == file.license.policy_id:
            return checked_out_license_view(file.license, policy, now)
        with reading(services, req) as curs:  # the license changed policy meanwhile
            return found(get_license(curs, license_id, now), "license")

    return CheckedOut(file.certificate, file.checkout, file.expires_at, view)


@dataclass(frozen=True)
class CheckedOut:
    certificate: str
    checkout: Checkout
    expires_at: datetime  # the file's own expiry
    license_view: Callable[[datetime], dict[str, Any]]


class LicenseCheckout:
    def __init__(self, services: Services) -> None:
        self._services = services

    @operation(
        summary="Check out an offline license file",
        description="Signed with the environment's active Ed25519 key. " + _REFUSALS,
        scope=Scope.LICENSES_WRITE,
        body=schemas.CHECKOUT,
        body_required=False,
        responses={200: one(schemas.CHECKED_OUT)},
    )
    def on_post(self, req: falcon.Request, resp: falcon.Response, license_id: UUID) -> None:
        issued = _check_out(self._services, req, license_id)
        document: dict[str, Any] = {
            "certificate": issued.certificate,
            "license": issued.license_view(self._services.clock()),
            "fingerprint": issued.checkout.fingerprint,
            "ttl": issued.checkout.ttl,
            "expiresAt": iso_ms(issued.expires_at),
        }
        respond_one(resp, document)


class LicenseOfflineFile:
    def __init__(self, services: Services) -> None:
        self._services = services

    @operation(
        summary="Check out an offline license file and download it (license.lic)",
        description="The same checkout as /checkout; the response is the file itself. " + _REFUSALS,
        scope=Scope.LICENSES_WRITE,
        body=schemas.CHECKOUT,
        body_required=False,
        responses={200: schemas.LICENSE_FILE},
        media_types={200: MEDIA_TYPE},
    )
    def on_post(self, req: falcon.Request, resp: falcon.Response, license_id: UUID) -> None:
        issued = _check_out(self._services, req, license_id)
        resp.content_type = MEDIA_TYPE
        resp.downloadable_as = FILE_NAME
        # Bytes, not text: the Idempotency-Key store keeps `resp.data`.
        resp.data = issued.certificate.encode("ascii")


class LicenseCheckoutCollection:
    def __init__(self, services: Services) -> None:
        self._services = services

    @operation(
        summary="List a license's unexpired checkouts with their current files",
        description="The re-signer keeps each file current when the license, its policy or "
        "the signing key changes (license.file_regenerated).",
        scope=Scope.LICENSES_READ,
        query=LIST_QUERY,
        responses={200: page(schemas.CHECKOUT_ITEM)},
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response, license_id: UUID) -> None:
        cursor, limit = list_params(req)
        now = self._services.clock()
        with reading(self._services, req) as curs:
            found(get_license(curs, license_id, now), "license")
            checkouts = list_checkouts(curs, license_id, now=now, cursor=cursor, limit=limit)
        respond_page(resp, checkouts)
