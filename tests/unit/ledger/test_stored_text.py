"""Text that is hashed or on the wire never changes: the fast forms equal the old ones."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from uuid import UUID
from uuid import uuid5

from hypothesis import given
from hypothesis import strategies as st

from ledger.domain.timestamps import iso_ms
from ledger.store.hashchain import ChainedEvent
from ledger.store.hashchain import iso_micro
from ledger.store.recorder import event_id_of

ZONES = st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
)


@given(st.datetimes(timezones=ZONES))
def test_iso_micro_is_the_strftime_text(moment: datetime) -> None:
    assert iso_micro(moment) == moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@given(st.uuids(), st.uuids(), st.uuids(), st.datetimes(timezones=st.just(UTC)))
def test_uuids_are_hashed_as_their_text(
    tenant: UUID, stream: UUID, event: UUID, at: datetime
) -> None:
    def chained(t: object, s: object, e: object) -> ChainedEvent:
        return ChainedEvent(t, s, "license", 1, e, "license.created", 1, {"a": 1}, {}, at, at)  # type: ignore[arg-type]

    as_uuids = chained(tenant, stream, event)
    as_text = chained(str(tenant), str(stream), str(event))
    assert as_uuids.canonical_bytes() == as_text.canonical_bytes()
    assert as_uuids.append_row() == {**as_text.append_row(), "stream": stream, "id": event}


@given(st.datetimes(timezones=ZONES))
def test_iso_ms_is_the_strftime_text(moment: datetime) -> None:
    expected = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{moment.microsecond // 1000:03d}Z"
    )
    assert iso_ms(moment) == expected


@given(st.uuids(), st.uuids(), st.integers(1, 2**62))
def test_event_ids_are_rfc_4122_name_based_uuids(tenant: UUID, stream: UUID, version: int) -> None:
    expected = uuid5(UUID("5a0e3c8e-7d0b-4b8e-9f1e-6c1f3d1b2a90"), f"{tenant}:{stream}:{version}")
    assert event_id_of(tenant, stream, version) == expected
