"""The validation-event batcher, with a recording fake in place of the ledger."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from typing import Any
from uuid import UUID
from uuid import uuid4

from api import validation_events
from api.validation_events import ValidationEventBatcher
from api.validation_events import ValidationOutcome
from ledger.domain.codes import ValidationCode
from ledger.domain.validation_record import ValidationRecord
from ledger.store.recorder import ConcurrencyConflictError

TENANT_A = UUID(int=1)
TENANT_B = UUID(int=2)


@dataclass
class FakeLedger:
    """Records each `save_in` (one transaction); fails as told."""

    saves: list[tuple[UUID, list[ValidationRecord]]] = field(default_factory=list)
    failures: list[Exception] = field(default_factory=list)
    stored: set[UUID] = field(default_factory=set)

    def save_in(self, tenant_id: UUID, *records: ValidationRecord, metadata: Any) -> None:
        if self.failures:
            raise self.failures.pop(0)
        if any(r.id in self.stored for r in records):
            raise ConcurrencyConflictError("stream version taken")
        self.stored.update(r.id for r in records)
        self.saves.append((tenant_id, list(records)))


def outcome(tenant_id: UUID = TENANT_A, *, valid: bool = True) -> ValidationOutcome:
    code = ValidationCode.VALID if valid else ValidationCode.SUSPENDED
    return ValidationOutcome(tenant_id, uuid4(), valid, code, datetime.now(UTC))


def batcher(fake: FakeLedger) -> ValidationEventBatcher:
    # A long interval: only explicit flushes (and close) write, so the test decides when.
    return ValidationEventBatcher(lambda: fake, interval=3600)  # type: ignore[arg-type,return-value]


def test_one_append_per_tenant_per_flush() -> None:
    fake = FakeLedger()
    events = batcher(fake)
    for item in [outcome(), outcome(TENANT_B), outcome(valid=False)]:
        events.record(item)
    assert events.flush()
    assert sorted((t, len(r)) for t, r in fake.saves) == [(TENANT_A, 2), (TENANT_B, 1)]
    records = dict(fake.saves)[TENANT_A]
    assert [type(r.collect_events()[0]).__name__ for r in records] == ["Success", "Failed"]
    events.close()


def test_a_failed_append_is_retried_then_given_up() -> None:
    fake = FakeLedger(failures=[OSError("down")] * validation_events.MAX_ATTEMPTS)
    events = batcher(fake)
    events.record(outcome())
    assert not events.flush()
    fake.failures = []
    assert events.flush()
    assert len(fake.stored) == 1
    fake.failures = [OSError("down")] * validation_events.MAX_ATTEMPTS
    events.record(outcome())
    for _ in range(validation_events.MAX_ATTEMPTS):
        events.flush()
    assert events.dropped == 1
    events.close()


def test_a_retry_of_a_committed_batch_stores_only_the_new_items() -> None:
    fake = FakeLedger()
    events = batcher(fake)
    first = outcome()
    events.record(first)
    events.flush()
    # The commit was in doubt: the same record comes back with a new one.
    events.record(first)
    events.record(second := outcome())
    events.flush()
    assert [r.id for _, records in fake.saves for r in records] == [
        first.record_id,
        second.record_id,
    ]
    events.close()


def test_close_flushes_what_is_queued() -> None:
    fake = FakeLedger()
    events = batcher(fake)
    events.record(outcome())
    events.record(outcome())
    events.close()
    assert len(fake.stored) == 2
    events.close()  # idempotent
