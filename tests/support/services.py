"""Find or start the real PostgreSQL and Redis the tests run against (ARCHITECTURE.md §6).

Order of preference, for each service: the URL in the environment, then the default
local port, then an embedded/child server owned by this test run. Nothing is skipped:
when no option works the run fails with the reasons.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import redis
from psycopg import sql

from ledger.store.dsn import redact_url
from ledger.store.dsn import with_database

LOCAL_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
LOCAL_REDIS_URL = "redis://127.0.0.1:6379/0"
TEST_DATABASE_PREFIX = "licentric_test_"


@dataclass
class Service:
    """A reachable server: ``url`` to use, ``source`` for messages, ``stop`` if ours."""

    url: str
    source: str
    stop: Callable[[], None] | None = None

    def close(self) -> None:
        if self.stop is not None:
            self.stop()


class ServiceUnavailableError(RuntimeError):
    """No candidate answered and nothing could be started."""


# --- PostgreSQL ----------------------------------------------------------------------


def postgres_answers(url: str) -> bool:
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


def provision_postgres(environ: Mapping[str, str], scratch_dir: Path) -> Service:
    """A PostgreSQL server on which this run may create and drop databases."""
    tried: list[str] = []
    candidates = [(environ.get("DATABASE_URL", "").strip(), "DATABASE_URL")]
    candidates.append((LOCAL_POSTGRES_URL, "local PostgreSQL on 127.0.0.1:5432"))
    for url, source in candidates:
        if not url:
            continue
        if postgres_answers(url):
            return Service(url=url, source=source)
        tried.append(f"{source} ({redact_url(url)}) did not answer")
    # Imported here: the embedded path is the only one that needs pgserver.
    from ledger.store.embedded import start_embedded_postgres  # noqa: PLC0415
    from ledger.store.embedded import stop_embedded_postgres  # noqa: PLC0415

    try:
        url = start_embedded_postgres(scratch_dir)
    except Exception as exc:
        tried.append(f"embedded PostgreSQL failed to start: {exc!r}")
        raise ServiceUnavailableError("no PostgreSQL for the tests: " + "; ".join(tried)) from exc
    return Service(
        url=url,
        source=f"embedded PostgreSQL at {scratch_dir}",
        stop=lambda: stop_embedded_postgres(scratch_dir),
    )


def create_migrated_database(server_url: str) -> str:
    """Create ``licentric_test_<hex>`` on the server, migrate it, return its URL."""
    from ledger.store.migrate import migrate  # noqa: PLC0415  (the code under test)

    name = TEST_DATABASE_PREFIX + secrets.token_hex(6)
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = with_database(server_url, name)
    migrate(url)
    return url


def drop_database(server_url: str, url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    assert name.startswith(TEST_DATABASE_PREFIX), f"refusing to drop {name!r}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        # FORCE: a server process under test may still hold pooled connections.
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


# --- Redis ---------------------------------------------------------------------------


def redis_answers(url: str) -> bool:
    try:
        with redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1) as client:
            client.ping()
    except (redis.RedisError, OSError):
        return False
    return True


def provision_redis(environ: Mapping[str, str], scratch_dir: Path) -> Service:
    """A Redis server; tests must namespace their keys (it may be shared)."""
    tried: list[str] = []
    candidates = [(environ.get("REDIS_URL", "").strip(), "REDIS_URL")]
    candidates.append((LOCAL_REDIS_URL, "local Redis on 127.0.0.1:6379"))
    for url, source in candidates:
        if not url:
            continue
        if redis_answers(url):
            return Service(url=url, source=source)
        tried.append(f"{source} ({redact_url(url)}) did not answer")
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(binary).exists():
        tried.append("no redis-server binary (apt-get install redis-server, or set REDIS_URL)")
        raise ServiceUnavailableError("no Redis for the tests: " + "; ".join(tried))
    return _start_redis(binary, scratch_dir)


def _start_redis(binary: str, scratch_dir: Path, *, port: int | None = None) -> Service:
    port = port or free_port()
    log = scratch_dir / "redis.log"
    # No persistence at all: the server lives only for this run.
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--dir", str(scratch_dir), "--logfile", str(log)]
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def stop() -> None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while not redis_answers(url):
        if process.poll() is not None or time.monotonic() > deadline:
            stop()
            detail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            msg = f"redis-server did not start on port {port}: {detail}"
            raise ServiceUnavailableError(msg)
        time.sleep(0.05)
    return Service(url=url, source=f"redis-server child on port {port}", stop=stop)


def free_port() -> int:
    """A TCP port free right now on 127.0.0.1 (the tiny reuse race is acceptable)."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def run_embedded_postgres(action: str, data_dir: Path) -> str:
    """`start` (returns its URL) or `stop` an embedded PostgreSQL of a test's own, in a
    child process: pgserver caches one handle per data directory in-process, which
    would not notice a stop and would skip the next start."""
    assert action in ("start", "stop")
    code = (
        "import sys; from pathlib import Path; from ledger.store import embedded;"
        f" print(embedded.{action}_embedded_postgres(Path(sys.argv[1])) or '')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        # pgserver prints the server's own log when a start fails: keep it in the error.
        msg = f"embedded PostgreSQL {action} failed:\n{result.stderr[-4000:]}"
        raise ServiceUnavailableError(msg)
    lines = result.stdout.strip().splitlines()
    return lines[-1] if lines else ""


@contextlib.contextmanager
def own_embedded_postgres() -> Iterator[tuple[str, Path]]:
    """A fresh embedded PostgreSQL for one test: (superuser URL, data directory).

    The directory is made outside pytest's base temp directory on purpose: as root,
    pgserver runs postgres as its own user and opens the path's parents to it, and every
    new pytest session (another developer's run, say) closes pytest-of-<user> again
    (mode 0700), which would lock a running postgres out of its own data directory.
    """
    data_dir = Path(tempfile.mkdtemp(prefix="licentric-pg-"))
    try:
        url = run_embedded_postgres("start", data_dir)
        try:
            yield url, data_dir
        finally:
            run_embedded_postgres("stop", data_dir)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
