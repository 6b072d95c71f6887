"""Rate limits against real Redis: in-process (shared script) and across 2 gunicorn workers,
failing open while Redis is down and resuming when it is back (API.md §9)."""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import falcon.testing
import requests

from api.app import create_app
from api.config import Config
from tests.support.processes import licentric_command
from tests.support.processes import running_server
from tests.support.processes import server_env
from tests.support.services import _start_redis
from tests.support.services import free_port

MASTER_KEY = base64.b64encode(secrets.token_bytes(32)).decode()


def _account(database_url: str) -> dict[str, Any]:
    result = subprocess.run(
        [*licentric_command(), "account", "create", "--name", "limits", "--json"],
        env=server_env(DATABASE_URL=database_url, LICENTRIC_MASTER_KEY=MASTER_KEY),
        capture_output=True,
        check=True,
        timeout=60,
    )
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def test_burst_in_process_admits_exactly_the_limit(
    fresh_database: Callable[[], str], redis_url: str, tmp_path: Path
) -> None:
    database = fresh_database()
    key = _account(database)["environments"]["live"]["apiKey"]
    config = Config.from_env(
        {
            "DATABASE_URL": database,
            "REDIS_URL": redis_url,
            "LICENTRIC_MASTER_KEY": MASTER_KEY,
            "LICENTRIC_RATE_LIMIT_MANAGEMENT": "60/minute",
            "LICENTRIC_DATA_DIR": str(tmp_path),
        }
    )
    client = falcon.testing.TestClient(create_app(config))
    headers = {"Authorization": f"Bearer {key}"}
    results = [client.simulate_get("/api/v1/products", headers=headers) for _ in range(200)]
    statuses = [r.status_code for r in results]
    assert statuses.count(200) == 60
    assert statuses.count(429) == 140
    refused = results[-1]
    assert refused.json["code"] == "RATE_LIMITED"
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert results[0].headers["X-RateLimit-Limit"] == "60"
    assert results[0].headers["X-RateLimit-Remaining"] == "59"


def test_two_gunicorn_workers_share_the_limit_and_fail_open_without_redis(
    fresh_database: Callable[[], str], tmp_path: Path
) -> None:
    database = fresh_database()
    key = _account(database)["environments"]["live"]["apiKey"]
    port = free_port()
    own_redis = _start_redis("/usr/bin/redis-server", tmp_path, port=port)
    env = server_env(
        DATABASE_URL=database,
        REDIS_URL=own_redis.url,
        LICENTRIC_MASTER_KEY=MASTER_KEY,
        LICENTRIC_RATE_LIMITS="on",
        LICENTRIC_RATE_LIMIT_MANAGEMENT="60/minute",
    )
    headers = {"Authorization": f"Bearer {key}"}
    try:
        with running_server(env, log_dir=tmp_path, workers=2) as server, requests.Session() as s:
            url = server.url("/api/v1/products")
            statuses = [s.get(url, headers=headers, timeout=10).status_code for _ in range(200)]
            assert abs(statuses.count(200) - 60) <= 1, statuses.count(200)
            assert set(statuses) == {200, 429}

            own_redis.close()  # Redis goes away mid-run: requests are still served
            down = [s.get(url, headers=headers, timeout=10).status_code for _ in range(20)]
            assert down == [200] * 20

            own_redis = _start_redis("/usr/bin/redis-server", tmp_path, port=port)
            time.sleep(6)  # past the limiter's back-off, so it asks Redis again
            back = [s.get(url, headers=headers, timeout=10).status_code for _ in range(80)]
            assert back.count(429) >= 20  # limits resume (counts restart with a fresh Redis)
            assert "rate limiter unavailable" in server.log_text()
    finally:
        own_redis.close()
