"""`POST /licenses/validate-key` as the SDK sends it, served without Falcon's request cycle.

Why: validate-key is most of a licensing server's traffic, and its own work (a facts
cache lookup, the pure decision, one serialization, one HMAC) is a few tens of µs. What
Falcon adds around it — Request/Response objects, routing, five middleware, media
negotiation, the error-handler lookup — cost as much again in the in-process profile of
scripts/bench/validate.py (docs/benchmarks.md). This function does only what that
request needs and calls the very same `Validator.by_key`.

What it serves: a POST to exactly this path with `Content-Type: application/json`, a
`Content-Length` body of at most `MAX_BODY_BYTES` that parses to an object passing the
published schema (`api/schemas/validation.py`), with no query string and no
`Authorization` (the optional Bearer scoping). Anything else — including every body it
would refuse — is declined (the body re-wrapped for the app to read) and the Falcon app
answers exactly as it always did: one implementation of auth and 400 wording. Rate
limits (API.md §9) are checked on the same `RateLimitMiddleware` instance the app uses
(one count per request, whichever path serves it: a declined request is counted by the
middleware only), with the same headers and 429.
(An `Idempotency-Key` is keyed to a credential; validate-key has none, so Falcon's
middleware ignores it on this request, and so does this path.)

What it keeps of the Falcon path: `X-Request-Id` (echoed or minted) and the request id
in the log context, the latency histogram and the validations counter, and the error
envelope of any failure (`api.errors.failure_of`, the mapper the Falcon handlers use).
`tests/integration/api/test_validate_fast_path.py` holds the two paths to the same answers.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

import fastjsonschema
import orjson

from api.errors import failure_of
from api.logging import request_id_var
from api.media import may_be_unstorable
from api.metrics import REQUEST_SECONDS
from api.operations import compiled_schema
from api.ratelimit import RateLimitMiddleware
from api.request_id import choose_request_id
from api.schemas import validation as schemas
from api.validator import ValidationRequest
from api.validator import Validator

PATH = "/api/v1/licenses/validate-key"
# A validate-key body is a key, a fingerprint, a nonce and a few entitlement codes:
# anything longer is unusual enough to take the general path (which caps at 1 MiB).
MAX_BODY_BYTES = 16 * 1024
_WHERE = {"method": "POST", "path": PATH}
_STATUS_LINES = {200: "200 OK"}

StartResponse = Callable[[str, list[tuple[str, str]]], object]


class ValidateKeyFastPath:
    def __init__(self, validator: Validator, limits: RateLimitMiddleware | None = None) -> None:
        self._validator = validator
        self._limits = limits
        self._conforms = compiled_schema(schemas.VALIDATE_KEY)
        self._latency: dict[int, Any] = {}

    def __call__(
        self, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes] | None:
        """The response, or None: not a request this path serves (the app answers)."""
        if not _plain_request(environ):
            return None
        started = time.perf_counter()
        length = int(environ["CONTENT_LENGTH"])
        raw: bytes = environ["wsgi.input"].read(length)
        body = self._body(raw)
        if body is None:
            environ["wsgi.input"] = io.BytesIO(raw)  # the app reads what we read
            return None
        request_id = choose_request_id(environ.get("HTTP_X_REQUEST_ID"))
        token = request_id_var.set(request_id)
        try:
            status, data, extra = self._answer(environ, body, request_id)
        finally:
            request_id_var.reset(token)
        headers = [
            ("x-request-id", request_id),
            ("content-type", "application/json"),
            *extra,
            ("content-length", str(len(data))),
        ]
        start_response(_status_line(status), headers)
        self._observe(status, time.perf_counter() - started)
        return [data]

    def _body(self, raw: bytes) -> dict[str, Any] | None:
        """The parsed body when it is one this path may serve, else None."""
        if len(raw) == 0 or may_be_unstorable(raw):
            return None  # the app's media handler says what is wrong with it
        try:
            body = orjson.loads(raw)
            self._conforms(body)
        except (orjson.JSONDecodeError, fastjsonschema.JsonSchemaException):
            return None
        return body if isinstance(body, dict) else None

    def _answer(
        self, environ: dict[str, Any], body: dict[str, Any], request_id: str
    ) -> tuple[int, bytes, list[tuple[str, str]]]:
        limited: dict[str, str] = {}
        try:
            if self._limits is not None:
                key = self._limits.client_key(
                    "validate", environ.get("REMOTE_ADDR"), environ.get("HTTP_X_FORWARDED_FOR")
                )
                verdict = self._limits.check("validate", key)
                limited = {} if verdict is None else verdict.headers()
            answer = self._validator.by_key(body["key"], ValidationRequest.of(body, request_id))
        except Exception as e:  # every failure leaves as the envelope, as on the app's path
            failure = failure_of(e, _WHERE)
            headers = {**limited, **(failure.headers or {})}
            return failure.status, orjson.dumps(failure.body(request_id)), _lowered(headers)
        return 200, answer.body, _lowered({**answer.headers, **limited})

    def _observe(self, status: int, seconds: float) -> None:
        child = self._latency.get(status)
        if child is None:
            child = self._latency[status] = REQUEST_SECONDS.labels("POST", PATH, str(status))
        child.observe(seconds)


def _plain_request(environ: dict[str, Any]) -> bool:
    length = environ.get("CONTENT_LENGTH") or ""
    content_type = environ.get("CONTENT_TYPE") or ""
    return (
        environ.get("PATH_INFO") == PATH
        and environ.get("REQUEST_METHOD") == "POST"
        and not environ.get("QUERY_STRING")
        and (content_type == "application/json" or content_type.startswith("application/json;"))
        and length.isdigit()
        and 0 < int(length) <= MAX_BODY_BYTES
        and "HTTP_AUTHORIZATION" not in environ
        and "HTTP_TRANSFER_ENCODING" not in environ
    )


def _lowered(headers: dict[str, str]) -> list[tuple[str, str]]:
    return [(name.lower(), value) for name, value in headers.items()]


def _status_line(status: int) -> str:
    return _STATUS_LINES.get(status) or f"{status} {HTTPStatus(status).phrase}"
