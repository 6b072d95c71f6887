"""The re-signer: keeps every unexpired checkout's offline file current (API.md §7).

A tailing consumer of each tenant's log. For each batch of new events it collects what
can change a file (license changes, policy changes, a key rotation, a checkout signed
with a key that is no longer active; see projections/resigner.py), finds the licenses
concerned that have unexpired checkouts, and runs `regenerate_files` on each: a file
whose content (apart from its issue time) would not change is left alone, so the effect
converges and is idempotent.

Why the log rather than a job table filled by the projections: the triggers come from
three streams (license, policy, environment) owned by other read models, and the hot
path (validations appending usage events) would pay for a job row on every change of a
checked-out license. Reading the log costs the request path nothing.

It also snapshots license streams that checkouts grew to a multiple of the snapshot
interval: a checkout appends without saving an aggregate (ledger.commands.checkouts
`check_out`), and doing it here keeps the replay (a hundred events) off the request.

Exactly-once, effect-wise: the tenant's position is written in the same transaction as
the last regenerated files of the batch (or alone when the batch changed nothing). A
crash between two licenses of a batch replays the batch; the licenses already done are
current by then and regenerate nothing. Several workers may run this loop: they may
look at the same tenant, but a second regeneration of a file finds it current (a stream
conflict makes it reload first) and the position only moves forward.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from uuid import UUID

from cryptography.exceptions import InvalidTag
from psycopg import Cursor
from psycopg.rows import DictRow

from ledger.application import LedgerApplication
from ledger.commands.base import Actor
from ledger.commands.base import CommandContext
from ledger.commands.checkouts import regenerate_files
from ledger.domain.errors import DomainError
from ledger.domain.license import License
from ledger.store.tenancy import tenant_scope
from projections.offline import active_signing_key
from projections.offline import licenses_with_unexpired_checkouts
from projections.resigner import Triggers
from projections.resigner import read_triggers
from projections.resigner import store_position
from projections.resigner import tenants_behind

_log = logging.getLogger(__name__)

RESIGNER_ACTOR = Actor("system", "resigner")
DEFAULT_TENANTS_PER_PASS = 50
DEFAULT_EVENTS_PER_BATCH = 500

Clock = Callable[[], datetime]


class Resigner:
    name = "resigner"

    def __init__(
        self,
        ledger: LedgerApplication,
        *,
        master_key: bytes,
        clock: Clock,
        tenants_per_pass: int = DEFAULT_TENANTS_PER_PASS,
        events_per_batch: int = DEFAULT_EVENTS_PER_BATCH,
    ) -> None:
        self._ledger = ledger
        self._master_key = master_key
        self._clock = clock
        self._tenants_per_pass = tenants_per_pass
        self._events_per_batch = events_per_batch

    def run_once(self) -> int:
        """One batch per tenant that is behind; returns how many events were read."""
        with self._ledger.transaction() as curs:
            behind = tenants_behind(curs, self._tenants_per_pass)
        read = 0
        for tenant in behind:
            try:
                read += self.catch_up(tenant.tenant_id, after=tenant.position)
            except Exception:  # one tenant failing must not starve the others
                _log.exception("re-signing failed", extra={"tenant": str(tenant.tenant_id)})
        return read

    def catch_up(self, tenant_id: UUID, *, after: int) -> int:
        now = self._clock()
        with self._ledger.reading(tenant_id) as curs:
            triggers = read_triggers(
                curs,
                after=after,
                limit=self._events_per_batch,
                snapshot_every=self._ledger.snapshotting_intervals.get(License),
            )
            if triggers is None:
                return 0
            licenses = self._licenses(curs, triggers, now) if triggers.any else []
        # Before the position moves: a replayed batch snapshots again, which stores nothing.
        with tenant_scope(tenant_id):
            for license_id, version in triggers.snapshots_due.items():
                self._ledger.take_snapshot(license_id, version)

        def advance(curs: Cursor[DictRow]) -> None:
            store_position(curs, tenant_id, triggers.last_position)

        ctx = CommandContext(tenant_id, RESIGNER_ACTOR, now)
        advanced = False
        for index, license_id in enumerate(licenses):
            last = index == len(licenses) - 1
            try:
                regenerated = regenerate_files(
                    self._ledger,
                    ctx,
                    license_id,
                    master_key=self._master_key,
                    also=advance if last else None,
                )
            except (DomainError, InvalidTag, ValueError):
                # This license's files cannot be re-issued (e.g. a key that no longer
                # opens): skip it rather than stall the tenant. Database errors are not
                # caught: the batch is retried on the next pass.
                _log.exception("could not re-sign", extra={"license": str(license_id)})
                regenerated = 0
            advanced = last and regenerated > 0
            if regenerated:
                where = {"tenant": str(tenant_id), "license": str(license_id)}
                _log.info("offline files regenerated: %d", regenerated, extra=where)
        if not advanced:
            with self._ledger.reading(tenant_id) as curs:
                advance(curs)
        return triggers.last_position - after

    @staticmethod
    def _licenses(curs: Cursor[DictRow], triggers: Triggers, now: datetime) -> list[UUID]:
        if triggers.key_rotated:
            return sorted(licenses_with_unexpired_checkouts(curs, now=now))
        active = active_signing_key(curs)
        candidates = triggers.licenses | triggers.signed_with_other_than(
            None if active is None else active.kid
        )
        found = licenses_with_unexpired_checkouts(curs, now=now, license_ids=sorted(candidates))
        if triggers.policies:
            found += licenses_with_unexpired_checkouts(
                curs, now=now, policy_ids=sorted(triggers.policies)
            )
        return sorted(set(found))


def resigner_loops(ledger: LedgerApplication, *, master_key: bytes, clock: Clock) -> list[Resigner]:
    return [Resigner(ledger, master_key=master_key, clock=clock)]
