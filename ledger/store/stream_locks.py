"""Exclusive per-stream locks for commands that keep losing races on a stream.

Optimistic concurrency (the unique (tenant, stream, version) key) is what keeps seat
limits and caps exact, but it is not fair: a slow command on a license (a suspension
loads, replays and projects, ~10 ms) can lose to a steady flow of fast writers of that
license (checkouts, ~2 ms, migration 0016) every single time. So after a few lost races
`LedgerApplication.execute` runs the command's remaining attempts while holding the
stream's advisory lock exclusively; `record_checkout` takes the same lock shared, so
checkouts wait for that command (PostgreSQL queues new shared requests behind a waiting
exclusive one) instead of starving it.

The lock is a session lock held by a connection of a small pool of its own: while a
command waits for it, it must not hold a connection of the application's pool (twenty
threads racing on one license would exhaust that pool, seen in the tests), and a bounded
pool keeps a burst of escalations from opening connections without limit.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID

from psycopg_pool import ConnectionPool

from ledger.store.factory import APP_ROLE

# Connections per process for waiting on and holding stream locks. Escalations are rare
# (several lost races in a row); more of them at once wait here for a connection.
LOCK_CONNECTIONS = 4
# A command holds a stream lock for one attempt (milliseconds); waiting for one behind
# other escalated commands of the same stream may take longer.
_LOCK_TIMEOUT_MS = 30_000
# "<tenant>:<stream>", hashed as `record_checkout` hashes it (migration 0016).
_LOCK = "SELECT pg_advisory_lock(hashtextextended(%s, 0))"
_UNLOCK = "SELECT pg_advisory_unlock(hashtextextended(%s, 0))"


class StreamLocks:
    def __init__(self, database_url: str, *, size: int = LOCK_CONNECTIONS) -> None:
        self._url = database_url
        self._size = size
        self._pool: ConnectionPool | None = None
        self._opening = threading.Lock()

    @contextmanager
    def held(self, tenant_id: UUID, stream_id: UUID) -> Iterator[None]:
        key = (f"{tenant_id}:{stream_id}",)
        with self._connections().connection(timeout=_LOCK_TIMEOUT_MS / 1000) as conn:
            conn.execute(_LOCK, key)
            try:
                yield
            finally:
                try:
                    conn.execute(_UNLOCK, key)
                except Exception:
                    conn.close()  # the server drops a closed session's locks
                    raise

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()

    def _connections(self) -> ConnectionPool:
        # Opened on first use: most processes never escalate, and a pool's threads must
        # start after gunicorn forked the worker.
        with self._opening:
            if self._pool is None:
                self._pool = ConnectionPool(
                    self._url,
                    min_size=0,
                    max_size=self._size,
                    kwargs={
                        "autocommit": True,
                        "options": f"-c role={APP_ROLE} -c statement_timeout={_LOCK_TIMEOUT_MS}",
                    },
                    name="stream-locks",
                    open=True,
                )
            return self._pool
