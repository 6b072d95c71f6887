"""`/signing-keys`: the environment's Ed25519 public keys, and key rotation (API.md §3, §7).

Full-access API keys only (an empty scope list): these are the environment's root keys,
not a resource any scope names. Public keys are not secret, but which key signs the
next files, and the response-signing secret, are the account owner's business.
"""

from __future__ import annotations

import falcon

from api.auth import principal_of
from api.errors import ApiError
from api.operations import operation
from api.requests import command_context
from api.resources.reads import reading
from api.resources.reads import respond_one
from api.resources.reads import respond_page
from api.schemas import offline as schemas
from api.schemas.common import one
from api.schemas.common import page
from api.services import Services
from ledger.commands.signing_keys import rotate_response_secret
from ledger.commands.signing_keys import rotate_signing_key
from ledger.domain.codes import ErrorCode
from ledger.domain.environment import SigningKey
from ledger.domain.timestamps import iso_ms
from projections.offline import list_signing_keys
from projections.queries import Page

FULL_ACCESS = "Full-access API keys only (an empty scope list); others get 403 FORBIDDEN."


def require_full_access(req: falcon.Request) -> None:
    principal = principal_of(req)
    if principal.kind != "api_key" or principal.scopes:
        raise ApiError(
            ErrorCode.FORBIDDEN,
            "This endpoint needs a full-access API key (one with an empty scope list).",
            details={"scope": "*"},
        )


def _key_document(key: SigningKey) -> dict[str, object]:
    return {
        "kid": key.kid,
        "publicKey": key.public_key,
        "status": key.status,
        "createdAt": iso_ms(key.created_at),
    }


class SigningKeyCollection:
    def __init__(self, services: Services) -> None:
        self._services = services

    @operation(
        summary="List the environment's Ed25519 public keys (active and retired)",
        description="Offline files name their key by `kid`. " + FULL_ACCESS,
        responses={200: page(schemas.SIGNING_KEY)},
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_full_access(req)
        with reading(self._services, req) as curs:
            keys = list_signing_keys(curs)
        # Every key in one page: an environment has a handful.
        respond_page(resp, Page(keys, has_more=False))


class SigningKeyRotation:
    def __init__(self, services: Services) -> None:
        self._services = services

    @operation(
        summary="Rotate the Ed25519 signing key (default) or the response-signing secret",
        description='`{"kind": "ed25519"}` (default): new offline files are signed with a new '
        "key, the previous one is retired but stays listed, and the re-signer re-issues every "
        'unexpired checkout with the new key. `{"kind": "response"}`: a new response-signing '
        "secret, returned only here. " + FULL_ACCESS,
        body=schemas.ROTATE,
        body_required=False,
        responses={200: one(schemas.ROTATED)},
    )
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_full_access(req)
        kind = req.context.body.get("kind", schemas.ROTATE_ED25519)
        ctx = command_context(req, self._services)
        master_key = self._services.master_key
        if kind == schemas.ROTATE_RESPONSE:
            rotated = rotate_response_secret(self._services.ledger, ctx, master_key=master_key)
            respond_one(
                resp,
                {
                    "kind": kind,
                    "signingKey": rotated.secret,
                    "rotatedAt": iso_ms(rotated.rotated_at),
                },
            )
            return
        keys = rotate_signing_key(self._services.ledger, ctx, master_key=master_key)
        document = {"kind": kind, **_key_document(keys.active)}
        respond_one(resp, {**document, "retired": _key_document(keys.retired)})
