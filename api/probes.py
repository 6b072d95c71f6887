"""Readiness probes: a callable per dependency that raises when it is unreachable.

Each probe bounds its own wait (2 s) so ``/ready`` answers promptly when a dependency
hangs, instead of tying up a gunicorn thread (API.md §2: fail fast, never hang).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import psycopg
import redis

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

Probe = Callable[[], None]
TIMEOUT_SECONDS = 2


def database_probe(url: str, pool: ConnectionPool | None = None) -> Probe:
    """``SELECT 1`` through the app's pool when it has one, else a fresh connection."""

    def probe() -> None:
        if pool is not None:
            with pool.connection(timeout=TIMEOUT_SECONDS) as conn:
                conn.execute("SELECT 1")
            return
        with psycopg.connect(
            url,
            autocommit=True,
            connect_timeout=TIMEOUT_SECONDS,
            options=f"-c statement_timeout={TIMEOUT_SECONDS * 1000}",
        ) as conn:
            conn.execute("SELECT 1")

    return probe


def redis_probe(url: str) -> Probe:
    """``PING`` on a client created once (it keeps its own small connection pool)."""
    client = redis.Redis.from_url(
        url, socket_connect_timeout=TIMEOUT_SECONDS, socket_timeout=TIMEOUT_SECONDS
    )

    def probe() -> None:
        client.ping()

    return probe
