"""What resources are given: the ledger application, secrets, a clock and an id source.

Passed in rather than imported (falcon's `look` example): tests hand in a fixed clock.
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class Services:
    ledger: LedgerApplication
    config: Config
    clock: Callable[[], datetime] = utc_now
    new_id: Callable[[], UUID] = field(default=uuid4)

    @property
    def pepper(self) -> bytes:
        return self.config.pepper

    @property
    def master_key(self) -> bytes:
        return self.config.master_key
