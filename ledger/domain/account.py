"""Account: the customer that owns a `live` and a `test` environment."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar
from uuid import UUID

from eventsourcing.domain import event

from ledger.domain.base import LedgerAggregate
from ledger.domain.checks import Issues
from ledger.domain.checks import check_text
from ledger.domain.timestamps import require_utc


def check_account_name(name: object) -> None:
    issues = Issues()
    check_text(issues, "name", name, min_len=1, max_len=255)
    issues.raise_if_any()


class Account(LedgerAggregate):
    stream_type: ClassVar[str] = "account"

    @event("Created")
    def __init__(self, *, name: str, timestamp: datetime) -> None:
        self._start({})
        self.name = name

    @classmethod
    def create(cls, *, id: UUID, name: str, at: datetime) -> Account:
        check_account_name(name)
        return cls._create(cls.Created, id=id, name=name, timestamp=require_utc(at))

    def rename(self, *, name: str, at: datetime) -> None:
        self.check_not_deleted()
        check_account_name(name)
        if name != self.name:
            self._rename(name=name, timestamp=require_utc(at))

    @event("Renamed")
    def _rename(self, name: str, timestamp: datetime) -> None:
        self.name = name
