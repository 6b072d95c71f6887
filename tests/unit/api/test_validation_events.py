"""The validation-event batcher, with a recording fake in place of the ledger's recorder;
and its stored events are exactly those of `ValidationRecord.record` through the mapper."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any
from uuid import UUID
from uuid import uuid4

from hypothesis import given
from hypothesis import strategies as st

from api import validation_events
from api.validation_events import ValidationEventBatcher
from api.validation_events import ValidationOutcome
from ledger.application import STREAMS
from ledger.domain.codes import ValidationCode
from ledger.domain.validation_record import ValidationRecord
from ledger.store.hashchain import ChainedEvent
from ledger.store.mapper import EventNames
from ledger.store.mapper import StableNameMapper
from ledger.store.recorder import ConcurrencyConflictError
from ledger.store.recorder import TenantRecorder
from ledger.store.tenancy import require_tenant

TENANT_A = UUID(int=1)
TENANT_B = UUID(int=2)


@dataclass
class FakeLedger:
    """Records each append (`append_chained`) of its recorder; fails as told."""

    saves: list[tuple[UUID, list[ChainedEvent]]] = field(default_factory=list)
    failures: list[Exception] = field(default_factory=list)
    stored: set[UUID] = field(default_factory=set)

    @property
    def tenant_recorder(self) -> FakeLedger:
        return self

    def append_chained(
        self, build: Callable[[datetime], list[ChainedEvent]], metadata: Any
    ) -> None:
        if self.failures:
            raise self.failures.pop(0)
        events = build(datetime.now(UTC))
        if any(e.stream_id in self.stored for e in events):
            raise ConcurrencyConflictError("stream version taken")
        self.stored.update(e.stream_id for e in events)
        self.saves.append((require_tenant(), list(events)))


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
    assert [r.event_type for r in records] == ["validation.success", "validation.failed"]
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
    assert [r.stream_id for _, records in fake.saves for r in records] == [
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


@given(
    valid=st.booleans(),
    code=st.sampled_from(list(ValidationCode)),
    machine=st.none() | st.uuids(),
    fingerprint=st.none() | st.text(max_size=20),
    missing=st.lists(st.text(max_size=8), max_size=3).map(tuple),
    request_id=st.none() | st.text(max_size=12),
    # Years from 1000: the stored form's ISO text is not parsed back below that (and a
    # validation's time is the server's clock).
    at=st.datetimes(min_value=datetime(1000, 1, 1), timezones=st.just(UTC)),
)
def test_the_direct_events_are_those_of_the_aggregate(
    valid: bool,
    code: ValidationCode,
    machine: UUID | None,
    fingerprint: str | None,
    missing: tuple[str, ...],
    request_id: str | None,
    at: datetime,
) -> None:
    item = ValidationOutcome(
        TENANT_A, uuid4(), valid, code, at, machine, fingerprint, missing, request_id
    )
    EventNames.register(*STREAMS)
    record = ValidationRecord.record(
        id=item.record_id,
        valid=valid,
        license_id=item.license_id,
        code=code,
        machine_id=machine,
        fingerprint=fingerprint,
        missing=missing,
        request_id=request_id,
        at=at,
    )
    mapper = StableNameMapper(transcoder=None)  # type: ignore[arg-type]
    stored = mapper.to_stored_event(record.collect_events()[0])
    assert validation_events._stored(item) == stored
    # The rows the batcher appends directly are the ones insert_events makes of them.
    recorded_at = at + timedelta(seconds=1)
    metadata = validation_events._METADATA
    [direct] = validation_events._chained(TENANT_A, [item])(recorded_at)
    assert direct == TenantRecorder.chained(TENANT_A, stored, metadata, recorded_at)
    assert (
        direct.append_row()
        == TenantRecorder.chained(TENANT_A, stored, metadata, recorded_at).append_row()
    )
