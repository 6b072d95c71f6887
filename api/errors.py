"""The one error mapper: every failure leaves as the API.md §2 envelope.

``{"error", "code", "status", "details"?, "requestId"}`` — never Falcon's default
``{title, description}`` body, never a stack trace. Handlers are chosen by Falcon by the
most specific exception class, so the catch-all only sees what nothing else claims.
"""

from __future__ import annotations

import http
import logging
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import falcon
import psycopg
from eventsourcing import persistence

from api.request_id import request_id_of
from ledger.domain.errors import DomainError

_log = logging.getLogger(__name__)

VALIDATION_ERROR = "VALIDATION_ERROR"
UNAVAILABLE = "UNAVAILABLE"
INTERNAL = "INTERNAL"

# API.md §2, keyed by the wire code so it works for domain codes (a StrEnum whose value
# is the code) and for codes raised by the API layer alike.
STATUS_BY_CODE: Mapping[str, int] = {
    "VALIDATION_ERROR": 400,
    "CHECKOUT_TTL_INVALID": 400,
    "UNAUTHORIZED": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "CONFLICT": 409,
    "IDEMPOTENCY_KEY_REUSED": 409,
    "LICENSE_SUSPENDED": 409,
    "LICENSE_REVOKED": 409,
    "LICENSE_EXPIRED": 409,
    "LICENSE_BANNED": 409,
    "MACHINE_LIMIT_EXCEEDED": 422,
    "FLOATING_LIMIT_EXCEEDED": 422,
    "FINGERPRINT_TAKEN": 422,
    "OFFLINE_NOT_ALLOWED": 422,
    "USAGE_LIMIT_EXCEEDED": 422,
    "REFERENCE_NOT_FOUND": 422,
    "BUSINESS_RULE_VIOLATION": 422,
    "RATE_LIMITED": 429,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
}
# A domain code missing from the table is still a refusal of the request, not a crash.
_UNKNOWN_DOMAIN_STATUS = 422

# Falcon raises these for input problems; API.md §2 wants them all as 400
# VALIDATION_ERROR (an oversize body or a non-JSON content type is bad input too).
_INPUT_STATUSES = frozenset({400, 411, 413, 415, 422})


class ApiError(Exception):
    """Raised by resources and middleware to answer with a specific envelope."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        details: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers
        self.status = status or STATUS_BY_CODE.get(code, 400)


def validation_error(message: str, path: list[str | int] | None = None) -> ApiError:
    """A 400 whose ``details.issues`` has one entry, as API.md §2 shapes it."""
    issue = {"path": path or [], "message": message}
    return ApiError(VALIDATION_ERROR, message, details={"issues": [issue]})


def envelope(
    *, message: str, code: str, status: int, request_id: str, details: Mapping[str, Any] | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"error": message, "code": code, "status": status}
    if details is not None:
        body["details"] = dict(details)
    body["requestId"] = request_id
    return body


def install(app: falcon.App[falcon.Request, falcon.Response]) -> None:
    """Register every handler on ``app``, replacing Falcon's defaults."""
    app.add_error_handler(Exception, _handle_failure)
    app.add_error_handler(falcon.HTTPError, _handle_http_error)
    # Falcon picks the handler of the most specific class: ours, and the driver errors
    # (the event-sourcing library re-raises them as its own classes, and a connection
    # that died under a request is an InterfaceError), go to `failure_of`, never to a
    # Falcon default.
    for claimed in (ApiError, DomainError, *_UNAVAILABLE):
        app.add_error_handler(claimed, _handle_failure)


@dataclass(frozen=True)
class Failure:
    """What an error response says: status, code, message, details, extra headers."""

    status: int
    code: str
    message: str
    details: Mapping[str, Any] | None = None
    headers: Mapping[str, str] | None = None

    def body(self, request_id: str) -> dict[str, Any]:
        return envelope(
            message=self.message,
            code=self.code,
            status=self.status,
            request_id=request_id,
            details=self.details,
        )


_UNAVAILABLE = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    persistence.OperationalError,
    persistence.InterfaceError,
)


def failure_of(ex: Exception, where: Mapping[str, str]) -> Failure:
    """The response for any exception that is not one of Falcon's own HTTP errors.

    The one mapping, used by the Falcon handlers below and by the validate-key fast path
    (api/validate_fast_path.py). `where` (method and path) goes into the log line of a
    503 or 500: never headers or bodies, which carry credentials and license keys.
    """
    if isinstance(ex, ApiError):
        return Failure(ex.status, ex.code, ex.message, ex.details, ex.headers)
    if isinstance(ex, DomainError):
        return _domain_failure(ex)
    if isinstance(ex, _UNAVAILABLE):
        # Database down or pool exhausted: fail fast with a retryable 503 (the SDK
        # retries). The driver message names hosts, not secrets; still logs only.
        _log.warning("database unavailable: %s", type(ex).__name__, extra=dict(where))
        return Failure(
            503,
            UNAVAILABLE,
            "The database is unavailable; retry shortly.",
            headers={"Retry-After": "1"},
        )
    _log.error("unhandled error", exc_info=ex, extra=dict(where))
    return Failure(500, INTERNAL, "Internal server error.")


def _domain_failure(ex: DomainError) -> Failure:
    code = str(getattr(ex.code, "value", ex.code))
    status = STATUS_BY_CODE.get(code, _UNKNOWN_DOMAIN_STATUS)
    return Failure(status, code, getattr(ex, "message", None) or str(ex), ex.details)


def _render_failure(req: falcon.Request, resp: falcon.Response, failure: Failure) -> None:
    _render(
        req,
        resp,
        status=failure.status,
        code=failure.code,
        message=failure.message,
        details=failure.details,
        headers=failure.headers,
    )


def _handle_failure(
    req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict[str, Any]
) -> None:
    _render_failure(req, resp, failure_of(ex, _where(req)))


def _render(
    req: falcon.Request,
    resp: falcon.Response,
    *,
    status: int,
    code: str,
    message: str,
    details: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
) -> None:
    resp.status = status
    resp.content_type = falcon.MEDIA_JSON
    if headers:
        resp.set_headers(headers)
    resp.media = envelope(
        message=message,
        code=code,
        status=status,
        request_id=request_id_of(req),
        details=details,
    )


def handle_domain_error(
    req: falcon.Request, resp: falcon.Response, ex: DomainError, params: dict[str, Any]
) -> None:
    """Render a ledger ``DomainError`` (``.code`` StrEnum, ``.message``, ``.details``)."""
    _render_failure(req, resp, _domain_failure(ex))


def _handle_http_error(
    req: falcon.Request, resp: falcon.Response, ex: falcon.HTTPError, params: dict[str, Any]
) -> None:
    status = ex.status_code
    headers = ex.headers
    if status in _INPUT_STATUSES:
        message = _input_message(ex)
        issue = {"path": [], "message": message}
        _render(
            req,
            resp,
            status=400,
            code=VALIDATION_ERROR,
            message=message,
            details={"issues": [issue]},
            headers=headers,
        )
        return
    code = _code_for_status(status)
    message = ex.description or _phrase(status)
    _render(req, resp, status=status, code=code, message=message, headers=headers)


def _where(req: falcon.Request) -> dict[str, str]:
    return {"method": req.method, "path": req.path}


def _input_message(ex: falcon.HTTPError) -> str:
    if isinstance(ex, falcon.MediaNotFoundError):
        return "The request body is empty; a JSON document is required."
    if isinstance(ex, falcon.MediaMalformedError):
        return "The request body is not valid JSON."
    if ex.status_code == 413:
        return ex.description or "The request body is too large."
    if ex.status_code == 415:
        return "The request body must be JSON (Content-Type: application/json)."
    return ex.description or "The request is invalid."


def _code_for_status(status: int) -> str:
    if status == 503:
        return UNAVAILABLE
    if status >= 500:
        return INTERNAL
    for code, code_status in STATUS_BY_CODE.items():
        if code_status == status:
            return code
    return _enum_name(status)


def _enum_name(status: int) -> str:
    try:
        return http.HTTPStatus(status).name
    except ValueError:
        return "HTTP_ERROR"


_MESSAGES = {
    404: "The requested resource was not found.",
    405: "This method is not allowed on this resource.",
}


def _phrase(status: int) -> str:
    if status in _MESSAGES:
        return _MESSAGES[status]
    try:
        return http.HTTPStatus(status).phrase + "."
    except ValueError:
        return "Request failed."
