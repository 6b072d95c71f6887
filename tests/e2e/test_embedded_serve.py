"""``licentric serve`` with no DATABASE_URL: embedded PostgreSQL, one command."""

from __future__ import annotations

import stat
from pathlib import Path

import requests

from ledger.store.embedded import stop_embedded_postgres
from tests.support.processes import running_server
from tests.support.processes import server_env

STARTUP_BUDGET_SECONDS = 15.0


def test_serve_without_database_url_is_healthy_and_stops_cleanly(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = server_env(LICENTRIC_DATA_DIR=str(data_dir))
    try:
        with running_server(
            env, log_dir=tmp_path, startup_timeout=STARTUP_BUDGET_SECONDS, workers=2
        ) as server:
            assert server.startup_seconds < STARTUP_BUDGET_SECONDS
            ready = requests.get(server.url("/api/v1/ready"), timeout=10)
            assert ready.status_code == 200
            body = ready.json()
            assert body.pop("lag").keys() == {"analytics", "resigner", "webhooks"}
            assert body == {"status": "ready", "database": "ok", "redis": "disabled"}

            exit_code = server.stop()

        assert exit_code == 0, server.log_text()
        assert f"embedded PostgreSQL at {data_dir / 'pg'}" in server.log_text()
        key_mode = stat.S_IMODE((data_dir / "master.key").stat().st_mode)
        assert key_mode == 0o600
    finally:
        stop_embedded_postgres(data_dir)


def test_restart_reuses_the_embedded_database_and_master_key(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = server_env(LICENTRIC_DATA_DIR=str(data_dir))
    try:
        with running_server(env, log_dir=tmp_path) as first:
            assert first.stop() == 0
        key = (data_dir / "master.key").read_bytes()
        stop_embedded_postgres(data_dir)  # a cold start of the database, not only the API

        with running_server(env, log_dir=tmp_path) as second:
            ready = requests.get(second.url("/api/v1/ready"), timeout=10)
            assert ready.status_code == 200
        assert (data_dir / "master.key").read_bytes() == key
    finally:
        stop_embedded_postgres(data_dir)
