"""What resources are given: the ledger application, secrets, a clock and an id source.

Passed in rather than imported (falcon's `look` example): tests hand in a fixed clock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from uuid import UUID
from uuid import uuid4

from api.config import Config
from ledger.application import LedgerApplication


def utc_now() -> datetime:
    return datetime.now(UTC)


class LazyLedger:
    """Builds the ledger application on first use: the library connects when it is
    constructed, and `create_app` must not (a server starts while its database is down,
    and answers 503 until it is back)."""

    def __init__(self, build: Callable[[], LedgerApplication]) -> None:
        self._build = build
        self._app: LedgerApplication | None = None
        self._lock = threading.Lock()

    def get(self) -> LedgerApplication:
        if self._app is None:
            with self._lock:
                if self._app is None:
                    self._app = self._build()
        return self._app


@dataclass(frozen=True)
class Services:
    source: LedgerApplication | LazyLedger
    config: Config
    clock: Callable[[], datetime] = utc_now
    new_id: Callable[[], UUID] = field(default=uuid4)

    @property
    def ledger(self) -> LedgerApplication:
        source = self.source
        return source.get() if isinstance(source, LazyLedger) else source

    @property
    def pepper(self) -> bytes:
        return self.config.pepper

    @property
    def master_key(self) -> bytes:
        return self.config.master_key
