"""`/metrics` of a real 2-worker server aggregates every worker's samples."""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
from collections.abc import Callable
from pathlib import Path

import requests

from tests.support.processes import licentric_command
from tests.support.processes import running_server
from tests.support.processes import server_env

MASTER_KEY = base64.b64encode(secrets.token_bytes(32)).decode()


def test_metrics_expose_the_documented_series(
    fresh_database: Callable[[], str], tmp_path: Path
) -> None:
    database = fresh_database()
    env = server_env(DATABASE_URL=database, LICENTRIC_MASTER_KEY=MASTER_KEY)
    account = json.loads(
        subprocess.run(
            [*licentric_command(), "account", "create", "--name", "m", "--json"],
            env=env,
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
    )
    key = account["environments"]["live"]["apiKey"]
    with running_server(env, log_dir=tmp_path, workers=2) as server, requests.Session() as s:
        for _ in range(10):
            s.get(server.url("/api/v1/products"), headers={"Authorization": f"Bearer {key}"})
        s.post(server.url("/api/v1/licenses/validate-key"), json={"key": "NOPE-AAAA"})
        text = s.get(server.url("/metrics"), timeout=10).text
    assert (
        'licentric_http_request_duration_seconds_count{method="GET",'
        'route="/api/v1/products",status="200"} 10.0'
    ) in text
    assert "licentric_validations_total" in text
    assert "licentric_rate_limit_fail_open_total" in text
    for consumer in ("analytics", "resigner", "webhooks"):
        assert f'licentric_consumer_lag_events{{consumer="{consumer}"}}' in text
    assert "licentric_webhook_backlog_deliveries" in text
    assert "licentric_webhook_failed_deliveries" in text
    assert key not in text
