"""Server processes for the HTTP benchmarks: `licentric serve` and the bare baseline.

Both run gunicorn with api/gunicorn_conf.py and the same LICENTRIC_WORKERS/THREADS, so
they differ only in the WSGI app they serve.
"""

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

import requests

from api.config import default_workers
from tests.support.processes import licentric_command
from tests.support.processes import server_env
from tests.support.services import free_port

REPO = Path(__file__).resolve().parents[2]
GUNICORN_CONF = REPO / "api" / "gunicorn_conf.py"
DEFAULT_THREADS = 4  # Config's default (`licentric serve` without --threads)


@dataclass(frozen=True)
class Shape:
    """gunicorn's worker shape: what `licentric serve` uses unless told otherwise."""

    workers: int = default_workers()
    threads: int = DEFAULT_THREADS

    def describe(self) -> str:
        return f"gunicorn gthread, {self.workers} workers x {self.threads} threads"


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def bench_env(database_url: str, master_key: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """The server environment: rate limits off (they would throttle a benchmark)."""
    return server_env(
        DATABASE_URL=database_url,
        LICENTRIC_MASTER_KEY=master_key,
        LICENTRIC_DATA_DIR=str(data_dir),
        LICENTRIC_LOG_LEVEL="warning",
        LICENTRIC_RATE_LIMITS="off",
        **extra,
    )


@contextlib.contextmanager
def licentric_server(
    name: str, env: Mapping[str, str], shape: Shape, log_dir: Path
) -> Iterator[Server]:
    """`licentric serve` (the real command: gunicorn -c api/gunicorn_conf.py api.wsgi:app)."""
    command = [*licentric_command(), "serve", "--no-migrate"]
    with _serving(name, command, env, shape, log_dir, "/api/v1/health") as server:
        yield server


@contextlib.contextmanager
def bare_server(
    env: Mapping[str, str], shape: Shape, log_dir: Path, body_bytes: int
) -> Iterator[Server]:
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        str(GUNICORN_CONF),
        "scripts.bench.bare_app:app",
    ]
    env = {**env, "BENCH_BARE_BODY_BYTES": str(body_bytes)}
    with _serving("bare", command, env, shape, log_dir, "/api/v1/licenses/validate-key") as s:
        yield s


@contextlib.contextmanager
def _serving(
    name: str,
    command: list[str],
    env: Mapping[str, str],
    shape: Shape,
    log_dir: Path,
    ready_path: str,
) -> Iterator[Server]:
    port = free_port()
    full_env = {
        **env,
        "LICENTRIC_HOST": "127.0.0.1",
        "LICENTRIC_PORT": str(port),
        "LICENTRIC_WORKERS": str(shape.workers),
        "LICENTRIC_THREADS": str(shape.threads),
    }
    log_path = log_dir / f"{name}-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            env=full_env,
            cwd=REPO,  # gunicorn puts its working directory on sys.path (scripts.bench…)
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: ours to end afterwards
        )
        server = Server(name, process, f"http://127.0.0.1:{port}", log_path)
        try:
            _wait_ready(server, ready_path)
            yield server
        finally:
            _stop(process)


def _wait_ready(server: Server, path: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if server.process.poll() is not None:
            msg = f"{server.name} server exited ({server.process.returncode}):\n{server.log_tail()}"
            raise RuntimeError(msg)
        with contextlib.suppress(requests.RequestException):
            if requests.get(server.base_url + path, timeout=1).status_code == 200:
                return
        if time.monotonic() > deadline:
            msg = f"{server.name} server not ready in {timeout:.0f} s:\n{server.log_tail()}"
            raise TimeoutError(msg)
        time.sleep(0.1)


def _stop(process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def exit_cleanly_on_sigterm() -> None:
    """SIGTERM (run_all's timeout) exits through `finally` blocks: servers stopped and
    databases dropped, instead of dying on the spot and leaving them behind."""

    def leave(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, leave)
