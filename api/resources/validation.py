"""`POST /licenses/validate-key` (no auth) and `POST /licenses/{id}/validate` (API.md §5).

Always 200 for a well-formed request, `valid: false` with a code for every refusal; the
body is signed (`X-Signature`, `X-Signature-Timestamp`) over the exact bytes sent.
"""

from __future__ import annotations

from uuid import UUID

import falcon

from api.auth import Auth
from api.auth import optional_api_key
from api.auth import principal_of
from api.operations import operation
from api.request_id import request_id_of
from api.schemas import validation as schemas
from api.services import Services
from api.validator import SignedAnswer
from api.validator import ValidationRequest
from api.validator import Validator
from ledger.commands.base import Actor
from ledger.domain.codes import Scope
from ledger.domain.errors import NotFound


def _respond(resp: falcon.Response, answer: SignedAnswer) -> None:
    resp.status = 200
    resp.content_type = falcon.MEDIA_JSON
    resp.data = answer.body  # serialized once; the signature covers these bytes
    resp.set_headers(answer.headers)


class ValidateKey:
    auth = Auth.NONE

    def __init__(self, services: Services, validator: Validator) -> None:
        self._services = services
        self._validator = validator

    @operation(
        summary="Validate a license key",
        description=(
            "No authentication: the key is the credential. An optional "
            "`Authorization: Bearer lk_…` restricts the lookup to that key's environment "
            "(a license of another environment is then NOT_FOUND) and signs NOT_FOUND "
            "answers too; without it, NOT_FOUND for an unknown key is not signed (no "
            "environment, hence no signing key, is known)."
        ),
        body=schemas.VALIDATE_KEY,
        responses={200: schemas.RESULT},
    )
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = req.context.body
        caller = optional_api_key(self._services, req)
        answer = self._validator.by_key(
            body["key"],
            ValidationRequest.of(body, request_id_of(req)),
            caller_tenant=None if caller is None else caller.tenant_id,
        )
        _respond(resp, answer)


class LicenseValidate:
    def __init__(self, services: Services, validator: Validator) -> None:
        self._services = services
        self._validator = validator

    @operation(
        summary="Validate a license by id",
        scope=Scope.LICENSES_READ,
        body=schemas.VALIDATE,
        body_required=False,
        responses={200: schemas.RESULT},
    )
    def on_post(self, req: falcon.Request, resp: falcon.Response, license_id: UUID) -> None:
        principal = principal_of(req)
        answer = self._validator.by_id(
            principal.tenant_id,
            license_id,
            ValidationRequest.of(req.context.body, request_id_of(req)),
            Actor(principal.kind, principal.id),
        )
        if answer is None:
            raise NotFound("license not found")
        _respond(resp, answer)
