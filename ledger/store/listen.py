"""A thread that LISTENs on one channel and hands each notification to a callback.

Used by the worker (wake up when a tenant's log grows) and by API processes (drop cached
validation facts when a row they came from changes). The connection is the app role's
(LISTEN needs no privilege) and is reopened after any failure; `on_connected` runs once
LISTEN is in place, `on_lost` as soon as the connection fails, so a caller whose
correctness depends on hearing every message can stop trusting what it holds while it
may be missing some.

`pending()` says whether a message may have arrived that the callback has not been given
yet (bytes waiting on the socket, or a batch being handed over): a caller that must not
act on what a message would change (the facts cache) checks it, a non-blocking poll,
instead of hoping this thread has been scheduled since the sender committed.
"""

from __future__ import annotations

import logging
import select
import threading
from collections.abc import Callable
from typing import Self

import psycopg

from ledger.store.factory import APP_ROLE

_log = logging.getLogger(__name__)
RECONNECT_SECONDS = 2.0


def _nothing() -> None:
    return None


class ChannelListener:
    def __init__(
        self,
        database_url: str,
        channel: str,
        on_notify: Callable[[str], None],
        *,
        on_connected: Callable[[], None] = _nothing,
        on_lost: Callable[[], None] = _nothing,
        name: str = "listener",
        poll_seconds: float = 1.0,
    ) -> None:
        self._url = database_url
        self._channel = channel
        self._on_notify = on_notify
        self._on_connected = on_connected
        self._on_lost = on_lost
        self._poll = poll_seconds
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._socket: int | None = None  # while connected and listening
        self._busy = False

    def pending(self) -> bool:
        """True when a message may be waiting (or is being handed over); also when not
        connected. A poll object of its own per call: one object must not be polled by
        two threads at once (CPython raises), and it costs under a microsecond."""
        fd = self._socket
        if fd is None or self._busy:
            return True
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))

    def start(self) -> Self:
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
                    conn.execute(f"LISTEN {self._channel}")
                    self._listen(conn.pgconn)
            except Exception as e:  # connection lost, or a callback's bug: the thread survives
                self._socket = None
                if isinstance(e, psycopg.Error):
                    _log.warning("listener on %s lost its connection; reconnecting", self._channel)
                else:
                    _log.exception("listener on %s failed; reconnecting", self._channel)
                self._on_lost()
                self._stopping.wait(RECONNECT_SECONDS)
        self._socket = None
        self._on_lost()

    def _listen(self, pgconn: psycopg.pq.abc.PGconn) -> None:
        # The raw libpq calls rather than `Connection.notifies()`, so that `_busy` is set
        # before the socket is drained and cleared only after every message read from
        # it was handed over: `pending()` then never has a gap.
        poller = select.poll()
        poller.register(pgconn.socket, select.POLLIN)
        self._socket = pgconn.socket
        self._on_connected()
        timeout_ms = int(self._poll * 1000)
        while not self._stopping.is_set():
            if not poller.poll(timeout_ms):
                continue
            self._busy = True
            try:
                pgconn.consume_input()
                while (note := pgconn.notifies()) is not None:
                    self._on_notify(note.extra.decode())
            finally:
                self._busy = False
            if pgconn.status != psycopg.pq.ConnStatus.OK:
                raise psycopg.OperationalError("listener connection lost")
