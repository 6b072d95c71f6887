"""Wake-ups for tailing consumers, sent after commit and coalesced.

NOTIFY inside the appending transaction would hold Postgres's database-wide notify lock
from pre-commit through the commit flush, serializing every tenant's appends. Instead,
an append marks its tenant here; a daemon thread sends at most one
`pg_notify('licentric_events', tenant)` per tenant per interval, on its own short
transaction with synchronous_commit off (a lost wake-up costs latency, never an event).
Consumers poll as well, so a crash between commit and wake-up delays, never loses.
"""

from __future__ import annotations

import logging
import threading
import time
from uuid import UUID

from eventsourcing.postgres import PostgresDatastore

NOTIFY_CHANNEL = "licentric_events"
# Under load this caps wake-ups at 20/s per process; well inside the 1 s delivery target.
DEFAULT_INTERVAL = 0.05

_log = logging.getLogger(__name__)


class WakeupNotifier:
    def __init__(self, datastore: PostgresDatastore, *, interval: float = DEFAULT_INTERVAL):
        self._datastore = datastore
        self._interval = interval
        self._pending: set[UUID] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    def touched(self, tenant_id: UUID) -> None:
        with self._lock:
            if self._closed:
                return  # the pool is closing; consumers poll
            self._pending.add(tenant_id)
            if self._thread is None or not self._thread.is_alive():
                # Started lazily, so a process that forks (gunicorn) starts its own.
                self._thread = threading.Thread(
                    target=self._run, name="licentric-wakeups", daemon=True
                )
                self._thread.start()
        self._wake.set()

    def close(self) -> None:
        """Send what is pending now and stop: called before the connection pool closes
        (a wake-up sent after it would fail and log a traceback)."""
        with self._lock:
            self._closed = True
            tenants, self._pending = self._pending, set()
        self._wake.set()
        if tenants:
            self._send(tenants)

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            with self._lock:
                if self._closed:
                    return
                tenants, self._pending = self._pending, set()
            if tenants:
                self._send(tenants)
            # Coalesce: appends arriving during this pause share the next NOTIFY. A sleep,
            # not an Event wait: every append sets the event, so a wait would not pause.
            time.sleep(self._interval)

    def _send(self, tenants: set[UUID]) -> None:
        try:
            with self._datastore.get_connection() as conn, conn.transaction():
                conn.execute("SET LOCAL synchronous_commit = off")
                for tenant in tenants:
                    conn.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, str(tenant)))
        except Exception:  # a wake-up must never take the process down; consumers poll
            _log.warning("could not send log wake-ups", exc_info=True)
