"""Every failure leaves as the API.md §2 envelope (falcon.testing, no network)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import falcon
import falcon.testing
import psycopg
import pytest

from api import errors
from api.app import create_app
from api.auth import Auth
from api.config import Config
from api.media import MAX_BODY_BYTES


class EchoResource:
    auth = Auth.NONE

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"received": req.get_media()}


class FailingResource:
    """Raises whatever the test put in ``error``."""

    auth = Auth.NONE

    def __init__(self) -> None:
        self.error: BaseException = RuntimeError("boom")

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        raise self.error


class FakeDomainError(Exception):
    """Shaped like ledger.domain.errors.DomainError: a code (StrEnum-like), message, details."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


@pytest.fixture
def failing() -> FailingResource:
    return FailingResource()


@pytest.fixture
def client(tmp_path: Path, failing: FailingResource) -> falcon.testing.TestClient:
    config = Config(
        database_url="postgresql://unused@127.0.0.1:1/unused",
        redis_url=None,
        data_dir=tmp_path,
        master_key=bytes(32),
    )
    app = create_app(config)
    app.add_route("/echo", EchoResource())
    app.add_route("/fail", failing)
    app.add_error_handler(FakeDomainError, errors.handle_domain_error)
    return falcon.testing.TestClient(app)


def assert_envelope(result: falcon.testing.Result, status: int, code: str) -> dict[str, Any]:
    assert result.status_code == status
    assert result.headers["Content-Type"].startswith("application/json")
    body: dict[str, Any] = result.json
    assert body["code"] == code
    assert body["status"] == status
    assert isinstance(body["error"], str)
    assert body["error"]
    assert body["requestId"] == result.headers["X-Request-Id"]
    assert "title" not in body
    assert "description" not in body
    return body


def test_unknown_route_is_not_found(client: falcon.testing.TestClient) -> None:
    assert_envelope(client.simulate_get("/api/v1/nothing"), 404, "NOT_FOUND")


def test_client_request_id_is_echoed_on_errors(client: falcon.testing.TestClient) -> None:
    result = client.simulate_get("/nothing", headers={"X-Request-Id": "abc-123"})

    body = assert_envelope(result, 404, "NOT_FOUND")
    assert body["requestId"] == "abc-123"


def test_unsafe_request_id_is_replaced(client: falcon.testing.TestClient) -> None:
    result = client.simulate_get("/api/v1/health", headers={"X-Request-Id": "a b\tc"})

    assert result.headers["X-Request-Id"] != "a b\tc"
    assert len(result.headers["X-Request-Id"]) == 32


def test_wrong_method_is_method_not_allowed(client: falcon.testing.TestClient) -> None:
    result = client.simulate_delete("/api/v1/health")

    assert_envelope(result, 405, "METHOD_NOT_ALLOWED")
    assert "GET" in result.headers["Allow"]


@pytest.mark.parametrize(
    "body",
    [pytest.param(b"{not json", id="malformed"), pytest.param(b"\xff\xfe", id="not-utf8")],
)
def test_malformed_json_is_a_validation_error(
    client: falcon.testing.TestClient, body: bytes
) -> None:
    result = client.simulate_post("/echo", body=body, content_type="application/json")

    envelope = assert_envelope(result, 400, "VALIDATION_ERROR")
    assert envelope["details"]["issues"][0]["message"] == envelope["error"]


def test_empty_body_is_a_validation_error(client: falcon.testing.TestClient) -> None:
    result = client.simulate_post("/echo", body=b"", content_type="application/json")

    assert_envelope(result, 400, "VALIDATION_ERROR")


def test_non_json_content_type_is_a_validation_error(client: falcon.testing.TestClient) -> None:
    result = client.simulate_post(
        "/echo", body=b"a=1", content_type="application/x-www-form-urlencoded"
    )

    assert_envelope(result, 400, "VALIDATION_ERROR")


def test_oversize_body_is_a_validation_error(client: falcon.testing.TestClient) -> None:
    body = b'"' + b"x" * MAX_BODY_BYTES + b'"'

    result = client.simulate_post("/echo", body=body, content_type="application/json")

    assert_envelope(result, 400, "VALIDATION_ERROR")


def test_valid_json_round_trips(client: falcon.testing.TestClient) -> None:
    result = client.simulate_post("/echo", json={"name": "café"})

    assert result.status_code == 200
    assert result.json == {"received": {"name": "café"}}


def test_unexpected_error_is_internal_and_logs_no_secrets(
    client: falcon.testing.TestClient,
    failing: FailingResource,
    caplog: pytest.LogCaptureFixture,
) -> None:
    failing.error = RuntimeError("boom")
    with caplog.at_level(logging.ERROR):
        result = client.simulate_get(
            "/fail",
            headers={"Authorization": "Bearer lk_live_SECRET"},
            body=b"BODYSECRET",
            content_type="application/json",  # a body without a type is refused first
        )

    body = assert_envelope(result, 500, "INTERNAL")
    assert "boom" not in body["error"]
    assert "details" not in body
    assert "RuntimeError: boom" in caplog.text
    assert "SECRET" not in caplog.text


def test_database_outage_is_unavailable_and_retryable(
    client: falcon.testing.TestClient, failing: FailingResource
) -> None:
    failing.error = psycopg.OperationalError("connection refused")

    result = client.simulate_get("/fail")

    assert_envelope(result, 503, "UNAVAILABLE")
    assert int(result.headers["Retry-After"]) >= 1


def test_falcon_errors_never_use_the_default_body(
    client: falcon.testing.TestClient, failing: FailingResource
) -> None:
    failing.error = falcon.HTTPForbidden(title="nope", description="not for you")

    body = assert_envelope(client.simulate_get("/fail"), 403, "FORBIDDEN")
    assert body["error"] == "not for you"


def test_api_error_carries_details_and_headers(
    client: falcon.testing.TestClient, failing: FailingResource
) -> None:
    failing.error = errors.ApiError(
        "RATE_LIMITED", "Slow down.", details={"limit": 60}, headers={"Retry-After": "7"}
    )

    result = client.simulate_get("/fail")

    body = assert_envelope(result, 429, "RATE_LIMITED")
    assert body["details"] == {"limit": 60}
    assert result.headers["Retry-After"] == "7"


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("NOT_FOUND", 404),
        ("LICENSE_SUSPENDED", 409),
        ("MACHINE_LIMIT_EXCEEDED", 422),
        ("CHECKOUT_TTL_INVALID", 400),
        ("SOMETHING_NEW", 422),
    ],
)
def test_domain_error_codes_map_to_their_status(
    client: falcon.testing.TestClient, failing: FailingResource, code: str, status: int
) -> None:
    failing.error = FakeDomainError(code, "refused", {"max": 1, "current": 1})

    body = assert_envelope(client.simulate_get("/fail"), status, code)
    assert body["error"] == "refused"
    assert body["details"] == {"max": 1, "current": 1}


def test_every_documented_code_has_a_status() -> None:
    # API.md §2 table; the SDK keys behaviour on these exact strings.
    documented = {
        "VALIDATION_ERROR", "CHECKOUT_TTL_INVALID", "UNAUTHORIZED", "FORBIDDEN", "NOT_FOUND",
        "CONFLICT", "IDEMPOTENCY_KEY_REUSED", "LICENSE_SUSPENDED", "LICENSE_REVOKED",
        "LICENSE_EXPIRED", "LICENSE_BANNED", "MACHINE_LIMIT_EXCEEDED", "FLOATING_LIMIT_EXCEEDED",
        "FINGERPRINT_TAKEN", "OFFLINE_NOT_ALLOWED", "USAGE_LIMIT_EXCEEDED",
        "REFERENCE_NOT_FOUND", "BUSINESS_RULE_VIOLATION", "RATE_LIMITED", "UNAVAILABLE",
    }  # fmt: skip

    assert documented <= set(errors.STATUS_BY_CODE)
