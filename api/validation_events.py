"""`validation.success` / `validation.failed`, recorded off the request path, in batches.

A request only puts a small tuple on an in-memory queue (no database work). A background
thread appends what has queued every `interval` seconds, or as soon as `max_batch` items
wait: one append (one transaction) per tenant per flush, whatever the request rate.

Each validation is its own one-event stream (`ValidationRecord`, a fresh id), so a batch
never conflicts with license commands or other processes' batches, and retrying a batch
whose commit was in doubt cannot store it twice (the unique (tenant, stream, version) key
refuses the copy).

Durability trade-off: these events are telemetry for webhooks and analytics. A crash
(SIGKILL, power loss) loses at most what was queued and not yet flushed, about
`interval` seconds of validations of that process; a graceful stop (gunicorn worker
exit, SIGTERM, interpreter exit) flushes first. What must never be lost is not batched:
uses under `maxUses` and the first `license.activated` are commands committed before
the response is sent.
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from collections import defaultdict
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from ledger.application import LedgerApplication
from ledger.domain.codes import ValidationCode
from ledger.domain.validation_record import ValidationRecord
from ledger.domain.validation_record import outcome_data
from ledger.domain.validation_record import outcome_event_name
from ledger.ids import unique_id
from ledger.store.hashchain import ChainedEvent
from ledger.store.mapper import stored_event
from ledger.store.recorder import ConcurrencyConflictError
from ledger.store.recorder import event_id_of
from ledger.store.tenancy import tenant_scope

_log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 0.2
DEFAULT_MAX_BATCH = 500
# Past this many queued items (the database is down for a while) the oldest are dropped:
# memory stays bounded, and requests keep being answered.
DEFAULT_MAX_QUEUE = 100_000
# About a minute of database outage (connect timeouts included) before giving up.
MAX_ATTEMPTS = 25
_METADATA = {"actor": {"type": "system", "id": "validation"}}
_started: weakref.WeakSet[ValidationEventBatcher] = weakref.WeakSet()


def close_all() -> None:
    """Flush every batcher of this process (gunicorn's `worker_exit` hook calls it)."""
    for batcher in list(_started):
        batcher.close()


def flush_all() -> None:
    """Append what every batcher of this process has queued now (tests, before counting)."""
    for batcher in list(_started):
        batcher.flush()


# Not frozen: a frozen dataclass sets each field through object.__setattr__ (2.5 vs 1.1 µs
# to build, once per validation). Nothing changes an outcome once queued.
@dataclass(slots=True)
class ValidationOutcome:
    tenant_id: UUID
    license_id: UUID
    valid: bool
    code: ValidationCode
    at: datetime
    machine_id: UUID | None = None
    fingerprint: str | None = None
    missing: tuple[str, ...] = ()
    request_id: str | None = None
    record_id: UUID = field(default_factory=unique_id)


class ValidationEventBatcher:
    def __init__(
        self,
        ledger: Callable[[], LedgerApplication],
        *,
        interval: float = DEFAULT_INTERVAL,
        max_batch: int = DEFAULT_MAX_BATCH,
        max_queue: int = DEFAULT_MAX_QUEUE,
    ) -> None:
        self._ledger = ledger
        self._interval = interval
        self._max_batch = max_batch
        self._queue: deque[tuple[ValidationOutcome, int]] = deque(maxlen=max_queue)
        self._wake = threading.Condition()
        self._flushing = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.dropped = 0  # items given up after MAX_ATTEMPTS failed appends

    def record(self, outcome: ValidationOutcome) -> None:
        """Queue one outcome; never blocks on the database."""
        if self._thread is None:
            self._start()
        with self._wake:
            self._queue.append((outcome, 0))
            if len(self._queue) >= self._max_batch:
                self._wake.notify()

    def flush(self) -> bool:
        """Append everything queued now (the thread does this; close() too).

        False when an append failed: its items are queued again for a later flush.
        """
        with self._flushing:
            while True:
                with self._wake:
                    size = min(len(self._queue), self._max_batch)
                    batch = [self._queue.popleft() for _ in range(size)]
                if not batch:
                    return True
                if not self._append(batch):
                    return False

    def close(self) -> None:
        """Stop the thread and flush what is queued (idempotent)."""
        with self._wake:
            if self._closed:
                return
            self._closed = True
            self._wake.notify()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)
        self.flush()

    def _start(self) -> None:
        with self._wake:
            if self._thread is not None or self._closed:
                return
            # Started on first use, after gunicorn forked this worker (a thread does not
            # survive a fork), and flushed at interpreter exit as a last resort.
            self._thread = threading.Thread(target=self._run, name="validation-events", daemon=True)
            self._thread.start()
        _started.add(self)
        atexit.register(self.close)

    def _run(self) -> None:
        failed = False
        while True:
            with self._wake:
                # After a failure, wait a full interval even if the queue is long: the
                # database needs time, and a closed() call still wakes us at once.
                if not self._closed and (failed or len(self._queue) < self._max_batch):
                    self._wake.wait(self._interval)
                if self._closed:
                    return
            try:
                failed = not self.flush()
            except Exception:  # the thread must survive anything
                _log.exception("validation events: flush failed")
                failed = True

    def _append(self, batch: list[tuple[ValidationOutcome, int]]) -> bool:
        """One append per tenant; False when one failed (its items are queued again)."""
        by_tenant: dict[UUID, list[tuple[ValidationOutcome, int]]] = defaultdict(list)
        for item in batch:
            by_tenant[item[0].tenant_id].append(item)
        ok = True
        for tenant_id, items in by_tenant.items():
            try:
                self._save(tenant_id, items)
            except Exception as e:  # the database is down or refused: keep them for later
                self._retry(items, e)
                ok = False
        return ok

    def _save(self, tenant_id: UUID, items: list[tuple[ValidationOutcome, int]]) -> None:
        # Straight to the recorder: the events `ValidationRecord.record` would produce
        # (a unit test checks they are the same rows), one autocommit append; these
        # streams have no read model to project.
        recorder = self._ledger().tenant_recorder
        outcomes = [outcome for outcome, _ in items]
        with tenant_scope(tenant_id):
            try:
                recorder.append_chained(_chained(tenant_id, outcomes), _METADATA)
            except ConcurrencyConflictError:
                # Only an item retried after an append whose commit was in doubt can
                # conflict (it was stored then); the statement rolled back, so append the
                # others one by one (rare), skipping those already stored.
                for outcome in outcomes:
                    try:
                        recorder.append_chained(_chained(tenant_id, [outcome]), _METADATA)
                    except ConcurrencyConflictError:
                        continue

    def _retry(self, items: list[tuple[ValidationOutcome, int]], error: Exception) -> None:
        again = [(outcome, attempts + 1) for outcome, attempts in items]
        kept = [item for item in again if item[1] < MAX_ATTEMPTS]
        self.dropped += len(again) - len(kept)
        _log.warning(
            "validation events: append failed (%s); %d kept for retry, %d dropped",
            type(error).__name__,
            len(kept),
            len(again) - len(kept),
            exc_info=error,
        )
        with self._wake:
            self._queue.extendleft(reversed(kept))


def _chained(
    tenant_id: UUID, outcomes: list[ValidationOutcome]
) -> Callable[[datetime], list[ChainedEvent]]:
    """The log rows of `outcomes`, as `TenantRecorder.insert_events` would make them from
    `_stored(outcome)` (same ids, data and canonical bytes), without the round trip
    through a StoredEvent's JSON."""

    def build(recorded_at: datetime) -> list[ChainedEvent]:
        return [
            ChainedEvent(
                tenant_id=tenant_id,
                stream_id=o.record_id,
                stream_type=ValidationRecord.stream_type,
                version=1,
                event_id=event_id_of(tenant_id, o.record_id, 1),
                event_type=outcome_event_name(o.valid),
                schema_version=1,
                data=_data(o),
                metadata=_METADATA,
                occurred_at=o.at,
                recorded_at=recorded_at,
            )
            for o in outcomes
        ]

    return build


def _data(outcome: ValidationOutcome) -> dict[str, object]:
    return outcome_data(
        outcome.license_id,
        code=outcome.code,
        machine_id=outcome.machine_id,
        fingerprint=outcome.fingerprint,
        missing=outcome.missing,
        request_id=outcome.request_id,
    )


def _stored(outcome: ValidationOutcome) -> StoredEvent:
    return stored_event(
        outcome_event_name(outcome.valid), outcome.record_id, 1, outcome.at, _data(outcome)
    )
