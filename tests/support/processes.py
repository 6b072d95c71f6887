"""Run a real ``licentric serve`` process for integration and end-to-end tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import requests

from tests.support.services import free_port

# Settings a developer's shell might carry that must not leak into a server under test.
_SCRUBBED_PREFIXES = ("LICENTRIC_",)
_SCRUBBED = frozenset({"DATABASE_URL", "REDIS_URL"})


def licentric_command() -> list[str]:
    """The installed console script when present (what users run), else ``-m api.cli``."""
    script = Path(sys.executable).with_name("licentric")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "api.cli"]


def server_env(**settings: str) -> dict[str, str]:
    """This process's environment without Licentric settings, plus ``settings``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in _SCRUBBED and not key.startswith(_SCRUBBED_PREFIXES)
    }
    # Rate limits have their own tests; elsewhere they would only throttle the suite.
    env["LICENTRIC_RATE_LIMITS"] = "off"
    env.update(settings)
    return env


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path
    startup_seconds: float = 0.0

    def url(self, path: str) -> str:
        return self.base_url + path

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM (the CLI forwards it to gunicorn); SIGKILL the group if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            # The server runs in its own session: its process group is ours to end.
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait()


@contextlib.contextmanager
def running_server(
    env: Mapping[str, str],
    *,
    log_dir: Path,
    startup_timeout: float = 15.0,
    workers: int = 1,
    threads: int = 4,
) -> Iterator[ServerProcess]:
    """Start ``licentric serve`` on a free port, wait for /health, stop it afterwards."""
    port = free_port()
    command = [*licentric_command(), "serve", "--port", str(port)]
    command += ["--workers", str(workers), "--threads", str(threads)]
    log_path = log_dir / f"server-{port}.log"
    with log_path.open("wb") as log:
        started = time.monotonic()
        process = subprocess.Popen(
            command,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            # A session of its own: teardown can end gunicorn's workers with it.
            start_new_session=True,
        )
        server = ServerProcess(process, f"http://127.0.0.1:{port}", log_path)
        try:
            _wait_until_healthy(server, log, deadline=started + startup_timeout)
            server.startup_seconds = time.monotonic() - started
            yield server
        finally:
            server.stop()


def _wait_until_healthy(server: ServerProcess, log: IO[bytes], *, deadline: float) -> None:
    while True:
        if server.process.poll() is not None:
            log.flush()
            msg = f"server exited with {server.process.returncode}:\n{server.log_text()[-4000:]}"
            raise RuntimeError(msg)
        with contextlib.suppress(requests.RequestException):
            if requests.get(server.url("/api/v1/health"), timeout=1).status_code == 200:
                return
        if time.monotonic() > deadline:
            log.flush()
            msg = f"server not healthy in time:\n{server.log_text()[-4000:]}"
            raise TimeoutError(msg)
        time.sleep(0.1)
