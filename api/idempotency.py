"""`Idempotency-Key` on POST (API.md §1): replay the first response, refuse reuse.

The SDK retries POSTs on 5xx and network errors, so a create may arrive twice. With a
key, the second gets the first's status and exact body bytes (`Idempotent-Replayed:
true`); the same key with another body is 409 IDEMPOTENCY_KEY_REUSED. Keys are scoped
to the credential. 5xx answers are not stored: the client should retry them.
"""

from __future__ import annotations

import hashlib
from typing import Any

import falcon
import orjson

from api.auth import Principal
from api.errors import ApiError
from api.errors import validation_error
from api.services import Services
from ledger.crypto import decrypt
from ledger.crypto import encrypt
from ledger.domain.codes import ErrorCode
from projections import idempotency
from projections.idempotency import Claimed

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255


def _sealing_context(tenant_id: object, credential: str, key: str) -> str:
    # Bound to its row: a stored body copied to another key or tenant does not decrypt.
    return f"{tenant_id}:idempotency:{credential}:{key}"


def _request_hash(req: falcon.Request) -> bytes:
    # The parsed body with sorted keys: the same JSON document is the same request
    # whatever its whitespace or key order.
    media = req.get_media(default_when_empty=None)
    canonical = orjson.dumps(media, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(f"{req.method} {req.path}\n".encode() + canonical).digest()


class IdempotencyMiddleware:
    def __init__(self, services: Services) -> None:
        self._services = services

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, params: dict[str, Any]
    ) -> None:
        key = req.get_header(HEADER)
        principal = getattr(req.context, "principal", None)
        if req.method != "POST" or key is None or not isinstance(principal, Principal):
            return
        if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
            raise validation_error(f"{HEADER} must be 1-{MAX_KEY_LENGTH} printable characters")
        credential = f"{principal.kind}:{principal.id}"
        request_hash = _request_hash(req)
        with self._services.ledger.reading(principal.tenant_id) as curs:
            outcome = idempotency.claim(
                curs,
                principal.tenant_id,
                credential_id=credential,
                key=key,
                request_hash=request_hash,
                now=self._services.clock(),
            )
        if isinstance(outcome, Claimed):
            req.context.idempotency = (principal.tenant_id, credential, key)
            return
        if outcome.request_hash != request_hash:
            raise ApiError(
                ErrorCode.IDEMPOTENCY_KEY_REUSED,
                f"This {HEADER} was used with a different request.",
            )
        if outcome.status is None or outcome.body is None:
            raise ApiError(
                ErrorCode.CONFLICT,
                f"A request with this {HEADER} is still being processed; retry shortly.",
                headers={"Retry-After": "1"},
            )
        resp.status = outcome.status
        resp.content_type = falcon.MEDIA_JSON
        resp.data = decrypt(
            self._services.master_key,
            outcome.body.decode(),
            context=_sealing_context(principal.tenant_id, credential, key),
        )
        resp.set_header("Idempotent-Replayed", "true")
        resp.complete = True

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        claimed = getattr(req.context, "idempotency", None)
        if claimed is None:
            return
        req.context.idempotency = None
        tenant_id, credential, key = claimed
        status = resp.status_code
        with self._services.ledger.reading(tenant_id) as curs:
            if status >= 500:
                idempotency.release(curs, credential, key)
                return
            # Render once here so the stored bytes are exactly the bytes sent.
            body = resp.data if resp.media is None else orjson.dumps(resp.media)
            resp.data = body or b""
            # Bodies shown once (API keys, license keys, account secrets) are kept only
            # encrypted, like every other secret at rest.
            sealed = encrypt(
                self._services.master_key,
                body or b"",
                context=_sealing_context(tenant_id, credential, key),
            )
            idempotency.complete(curs, credential, key, status, sealed.encode())
