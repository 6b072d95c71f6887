"""Shared end-to-end setup: a fresh database, an account, a real server and worker.

Each test module gets its own database and processes (module scope), so modules never
see each other's data; a module overrides `environ` to change settings.
"""

from __future__ import annotations

import base64
import secrets
import signal
import subprocess
from collections.abc import Callable
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime

import pytest

from api.app import ledger_application
from api.config import Config
from ledger.accounts import OpenedEnvironment
from ledger.accounts import open_account
from ledger.application import LedgerApplication
from ledger.domain.codes import EnvironmentName
from tests.support.processes import ServerProcess
from tests.support.processes import licentric_command
from tests.support.processes import running_server
from tests.support.processes import server_env


@pytest.fixture(scope="module")
def environ(
    fresh_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    return server_env(
        DATABASE_URL=fresh_database(),
        LICENTRIC_MASTER_KEY=base64.b64encode(secrets.token_bytes(32)).decode(),
        LICENTRIC_RATE_LIMITS="off",
        LICENTRIC_DATA_DIR=str(tmp_path_factory.mktemp("data")),
    )


@pytest.fixture(scope="module")
def config(environ: dict[str, str]) -> Config:
    return Config.from_env(environ)


@pytest.fixture(scope="module")
def ledger(config: Config) -> Iterator[LedgerApplication]:
    app = ledger_application(config)
    yield app
    app.close()


@pytest.fixture(scope="module")
def live(ledger: LedgerApplication, config: Config) -> OpenedEnvironment:
    """The live environment of a new account (its API key and signing secrets)."""
    opened = open_account(
        ledger,
        name="e2e-" + secrets.token_hex(3),
        master_key=config.master_key,
        pepper=config.pepper,
        at=datetime.now(UTC),
    )
    return opened.environments[EnvironmentName.LIVE]


@pytest.fixture(scope="module")
def server(
    environ: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    with running_server(environ, log_dir=tmp_path_factory.mktemp("logs"), workers=2) as process:
        yield process


@pytest.fixture(scope="module")
def worker(
    environ: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[subprocess.Popen[bytes]]:
    """`licentric worker` (timers, webhooks, re-signer) until the module is done."""
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*licentric_command(), "worker"],
            env=environ,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield process
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
