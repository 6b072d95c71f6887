"""Liveness and readiness answers, with fake probes."""

from __future__ import annotations

import falcon
import falcon.testing

from api import errors
from api import media
from api.request_id import RequestIdMiddleware
from api.resources.health import HealthResource
from api.resources.health import ReadyResource


def ok() -> None:
    return None


def down() -> None:
    raise ConnectionRefusedError("secret-host:5432")


def client_with(ready: ReadyResource) -> falcon.testing.TestClient:
    app = falcon.App(middleware=[RequestIdMiddleware()])
    media.install(app)
    errors.install(app)
    app.add_route("/health", HealthResource())
    app.add_route("/ready", ready)
    return falcon.testing.TestClient(app)


def test_health_is_ok_without_touching_dependencies() -> None:
    client = client_with(ReadyResource(database=down, redis=down))

    assert client.simulate_get("/health").json == {"status": "ok"}


def test_ready_when_every_dependency_answers() -> None:
    client = client_with(ReadyResource(database=ok, redis=ok))

    result = client.simulate_get("/ready")

    assert result.status_code == 200
    assert result.json == {"status": "ready", "database": "ok", "redis": "ok"}


def test_ready_reports_redis_disabled_when_not_configured() -> None:
    client = client_with(ReadyResource(database=ok, redis=None))

    assert client.simulate_get("/ready").json["redis"] == "disabled"


def test_not_ready_is_unavailable_naming_the_failed_dependency() -> None:
    client = client_with(ReadyResource(database=down, redis=ok))

    result = client.simulate_get("/ready")

    assert result.status_code == 503
    assert result.json["code"] == "UNAVAILABLE"
    assert result.json["details"] == {"database": "unavailable", "redis": "ok"}
    assert "secret-host" not in result.text
