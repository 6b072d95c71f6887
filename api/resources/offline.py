"""Offline license files (API.md §7): checkout, the `.lic` download, current checkouts.

Checking out needs `licenses:write`: it records a `license.checked_out` event and hands
out a file that grants offline use for up to 90 days, which a read-only key should not
be able to mint. Listing checkouts needs `licenses:read`.
"""

from __future__ import annotations

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
from ledger.commands.checkouts import CheckedOutFile
from ledger.commands.checkouts import checkout_license
from ledger.domain.codes import Scope
from ledger.offline.certificate import FILE_NAME
from ledger.offline.certificate import MEDIA_TYPE
from ledger.offline.content import iso_ms
from projections.offline import CheckoutInputs
from projections.offline import checked_out_license_view
from projections.offline import checkout_inputs
from projections.offline import list_checkouts
from projections.queries import get_license

_REFUSALS = (
    "400 CHECKOUT_TTL_INVALID (ttl outside 3600..min(7776000, offlineMaxDays x 86400)); "
    "422 OFFLINE_NOT_ALLOWED; 409 LICENSE_SUSPENDED|REVOKED|BANNED|EXPIRED when the "
    "license could not validate; 422 BUSINESS_RULE_VIOLATION with details.reason "
    "FINGERPRINT_NOT_FOUND when the fingerprint is not an active machine of the license."
)


def _check_out(
    services: Services, req: falcon.Request, license_id: UUID
) -> tuple[CheckedOutFile, CheckoutInputs]:
    body = req.context.body
    with reading(services, req) as curs:
        inputs = checkout_inputs(curs, license_id)
    issued = checkout_license(
        services.ledger,
        command_context(req, services),
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
    return issued, inputs


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
        issued, inputs = _check_out(self._services, req, license_id)
        now = self._services.clock()
        policy = inputs.policy
        if policy is not None and policy["id"] == issued.license.policy_id:
            license_ = checked_out_license_view(issued.license, policy, now)
        else:  # the license changed policy meanwhile: read it back
            with reading(self._services, req) as curs:
                license_ = found(get_license(curs, license_id, now), "license")
        document: dict[str, Any] = {
            "certificate": issued.certificate,
            "license": license_,
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
        issued, _ = _check_out(self._services, req, license_id)
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
