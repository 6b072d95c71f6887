"""Timers: heartbeat deadlines become `machine.dead`, expiries become `license.expired`.

Each pass asks one narrow SECURITY DEFINER function (migration 0006) for a batch of due
items across tenants (an index walk on the due time, oldest first), then handles each
item in its own tenant through a ledger command: time passing is recorded like any other
change, with optimistic concurrency.

Several workers may run these loops at once. They may find the same due items; the
commands are idempotent (nothing is recorded twice: a conflicting append retries on
fresh state and finds nothing left to do), and each worker takes its batch in a random
order so that two workers mostly start on different items. Items the command had
nothing to record for are settled (taken out of the due index) so no pass finds them
again. With a poll interval of a second or so, an item is handled within seconds of
its due time, far inside the 60 s the API promises.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from datetime import datetime
from typing import Generic
from typing import TypeVar

from psycopg import Cursor
from psycopg.rows import DictRow

from ledger.application import LedgerApplication
from ledger.commands.base import Actor
from ledger.commands.base import CommandContext
from ledger.commands.machines import record_license_expiry
from ledger.commands.machines import record_machine_death
from ledger.domain.errors import NotFound
from projections.heartbeats import is_overdue
from projections.heartbeats import settle
from projections.timers import DueExpiry
from projections.timers import DueHeartbeat
from projections.timers import due_expiries
from projections.timers import due_heartbeats
from projections.timers import settle_expiry
from workers.runner import Loop

_log = logging.getLogger(__name__)

TIMER_ACTOR = Actor("system", "timers")
DEFAULT_BATCH = 100

Clock = Callable[[], datetime]
Item = TypeVar("Item")


class _DueItems(Generic[Item]):
    """One batch of due items found through the due-time index, each handled in its
    own tenant; shuffled so several workers rarely start on the same item."""

    name = ""

    def __init__(
        self, ledger: LedgerApplication, *, clock: Clock, batch: int = DEFAULT_BATCH
    ) -> None:
        self._ledger = ledger
        self._clock = clock
        self._batch = batch

    def run_once(self) -> int:
        now = self._clock()
        with self._ledger.transaction() as curs:
            due = self._due(curs, now, self._batch)
        random.shuffle(due)
        return sum(self._handle(item, now) for item in due)

    def _due(self, curs: Cursor[DictRow], now: datetime, limit: int) -> list[Item]:
        raise NotImplementedError

    def _handle(self, item: Item, now: datetime) -> bool:
        raise NotImplementedError


class HeartbeatDeadlines(_DueItems[DueHeartbeat]):
    """Machines past their heartbeat deadline -> DEAD (and deactivated under
    DEACTIVATE_DEAD, which frees the seat)."""

    name = "timers.heartbeats"

    def _due(self, curs: Cursor[DictRow], now: datetime, limit: int) -> list[DueHeartbeat]:
        return due_heartbeats(curs, now, limit)

    def _handle(self, item: DueHeartbeat, now: datetime) -> bool:
        ledger = self._ledger
        ctx = CommandContext(item.tenant_id, TIMER_ACTOR, now)
        try:
            recorded = record_machine_death(
                ledger,
                ctx,
                license_id=item.license_id,
                machine_id=item.machine_id,
                overdue=lambda: is_overdue(ledger, item.tenant_id, item.machine_id, now),
            )
        except NotFound:
            recorded = False  # the license or machine is gone
        except Exception:
            _log.exception("heartbeat deadline failed", extra={"machine": str(item.machine_id)})
            return False
        if recorded:
            _log.info("machine dead", extra={"machine": str(item.machine_id)})
        else:
            with ledger.reading(item.tenant_id) as curs:
                settle(curs, item.machine_id, now)
        return True


class LicenseExpiries(_DueItems[DueExpiry]):
    """Licenses past `expiresAt` -> `license.expired` (and revoked under REVOKE)."""

    name = "timers.expiries"

    def _due(self, curs: Cursor[DictRow], now: datetime, limit: int) -> list[DueExpiry]:
        return due_expiries(curs, now, limit)

    def _handle(self, item: DueExpiry, now: datetime) -> bool:
        ctx = CommandContext(item.tenant_id, TIMER_ACTOR, now)
        try:
            recorded = record_license_expiry(self._ledger, ctx, license_id=item.license_id)
        except NotFound:
            recorded = False
        except Exception:
            _log.exception("license expiry failed", extra={"license": str(item.license_id)})
            return False
        if recorded:
            _log.info("license expired", extra={"license": str(item.license_id)})
        else:
            with self._ledger.reading(item.tenant_id) as curs:
                settle_expiry(curs, item.license_id, now)
        return True


def timer_loops(ledger: LedgerApplication, clock: Clock) -> list[Loop]:
    """Both timers, sharing one ledger application and clock."""
    return [HeartbeatDeadlines(ledger, clock=clock), LicenseExpiries(ledger, clock=clock)]
