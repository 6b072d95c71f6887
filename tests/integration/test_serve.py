"""A real ``licentric serve`` process against the run's database and Redis."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.processes import ServerProcess
from tests.support.processes import running_server
from tests.support.processes import server_env


@pytest.fixture(scope="module")
def server(
    owner_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    scratch: Path = tmp_path_factory.mktemp("serve")
    env = server_env(
        DATABASE_URL=owner_url,
        REDIS_URL=redis_url,
        LICENTRIC_MASTER_KEY=base64.b64encode(os.urandom(32)).decode(),
        LICENTRIC_DATA_DIR=str(scratch / "data"),
    )
    with running_server(env, log_dir=scratch) as process:
        yield process


def test_health_answers_ok(server: ServerProcess) -> None:
    response = requests.get(server.url("/api/v1/health"), timeout=5)

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["Content-Type"].startswith("application/json")


def test_ready_checks_database_and_redis(server: ServerProcess) -> None:
    response = requests.get(server.url("/api/v1/ready"), timeout=10)

    assert response.status_code == 200
    body = response.json()
    assert body.pop("lag").keys() == {"analytics", "resigner", "webhooks"}
    assert body == {"status": "ready", "database": "ok", "redis": "ok"}


def test_unknown_route_is_a_not_found_envelope(server: ServerProcess) -> None:
    response = requests.get(server.url("/api/v1/no-such-thing"), timeout=5)

    assert response.status_code == 404
    body = response.json()
    assert body["code"] == "NOT_FOUND"
    assert body["status"] == 404
    assert body["error"]
    assert body["requestId"] == response.headers["X-Request-Id"]


def test_client_request_id_is_echoed(server: ServerProcess) -> None:
    response = requests.get(
        server.url("/api/v1/nope"), headers={"X-Request-Id": "trace-42"}, timeout=5
    )

    assert response.headers["X-Request-Id"] == "trace-42"
    assert response.json()["requestId"] == "trace-42"


def test_every_response_gets_a_distinct_request_id(server: ServerProcess) -> None:
    ids = {
        requests.get(server.url("/api/v1/health"), timeout=5).headers["X-Request-Id"]
        for _ in range(5)
    }

    assert len(ids) == 5


def test_startup_log_names_address_and_masks_nothing_secret(server: ServerProcess) -> None:
    log = server.log_text()

    assert f"listening on {server.base_url}" in log
    assert "database: postgresql://" in log
