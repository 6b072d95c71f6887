"""Shared bits of every aggregate: stream type, soft delete, metadata, PATCH changes."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import Any
from typing import ClassVar
from typing import Final
from typing import TypeVar

from eventsourcing.domain import Aggregate
from eventsourcing.domain import event

from ledger.domain.checks import json_copy
from ledger.domain.errors import NotFound
from ledger.domain.timestamps import require_utc


class Unset(Enum):
    """Marks a PATCH field that was not given (as opposed to an explicit `None`)."""

    UNSET = "UNSET"


UNSET: Final = Unset.UNSET

T = TypeVar("T")


def given(value: T | Unset) -> bool:
    return value is not UNSET


class LedgerAggregate(Aggregate):
    """Base of the Ledger's aggregates.

    Subclasses define `stream_type` and a created event on `__init__` whose mutator calls
    `_start(metadata)`; they are created through a `create(id=..., at=...)` classmethod so
    the id and time come from outside. Event attributes are JSON-native (ids as `str`,
    datetimes other than the event `timestamp` as ISO strings).
    """

    stream_type: ClassVar[str] = ""
    # Event attribute name -> aggregate attribute name, where they differ.
    _ATTRIBUTES: ClassVar[dict[str, str]] = {}

    def _start(self, metadata: Mapping[str, Any]) -> None:
        self.deleted = False
        self.metadata: dict[str, Any] = json_copy(metadata)

    @property
    def created_at(self) -> datetime:
        return self.created_on

    @property
    def updated_at(self) -> datetime:
        return self.modified_on

    def check_not_deleted(self) -> None:
        if self.deleted:
            msg = f"{self.stream_type} {self.id} not found"
            raise NotFound(msg)

    def check_deletable(self) -> None:
        """Hook for subclasses whose deletion has preconditions."""

    def delete(self, *, at: datetime) -> None:
        """Soft delete: gone from reads (404) but the stream keeps its history."""
        self.check_not_deleted()
        self.check_deletable()
        self._mark_deleted(timestamp=require_utc(at))

    @event("Deleted")
    def _mark_deleted(self, timestamp: datetime) -> None:
        self.deleted = True

    def _record_changes(self, changes: dict[str, Any], at: datetime) -> bool:
        """Record a PATCH as one `Updated` event holding only the fields that change."""
        effective = {
            key: value
            for key, value in changes.items()
            if getattr(self, self._ATTRIBUTES.get(key, key)) != value
        }
        if not effective:
            return False
        self._update(changes=json_copy(effective), timestamp=require_utc(at))
        return True

    @event("Updated")
    def _update(self, changes: dict[str, Any], timestamp: datetime) -> None:
        for key, value in json_copy(changes).items():
            setattr(self, self._ATTRIBUTES.get(key, key), value)
