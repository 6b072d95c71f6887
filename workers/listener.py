"""Wake the worker when a tenant's log grows (`pg_notify('licentric_events', tenant)`).

Appends notify after commit, coalesced (ledger/store/wakeups.py). A lost notification
only costs latency: the runner also polls. The connection is the app role's, read-only
in effect (LISTEN needs no privilege), and reopened after any failure.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg

from ledger.store.factory import APP_ROLE
from ledger.store.wakeups import NOTIFY_CHANNEL

_log = logging.getLogger(__name__)
RECONNECT_SECONDS = 2.0


class LogListener:
    def __init__(self, database_url: str, on_wake: Callable[[], None]) -> None:
        self._url = database_url
        self._on_wake = on_wake
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="log-listener", daemon=True)

    def start(self) -> LogListener:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                with psycopg.connect(
                    self._url, autocommit=True, options=f"-c role={APP_ROLE}", connect_timeout=5
                ) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    while not self._stopping.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            self._on_wake()
            except psycopg.Error:
                _log.warning("log listener lost its connection; polling until it is back")
                self._stopping.wait(RECONNECT_SECONDS)
