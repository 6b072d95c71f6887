"""Replaying stored rows into aggregates, without the repository.

The repository loads one aggregate at a time (and prefers snapshots). Rebuilds and the
auditor's tools read many rows at once, straight from `events`, and must use the events
alone: they fold rows into aggregates here, through the same decoding as the mapper
(`domain_event_of`: stable names, upcasting) and the same mutators as every load.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from typing import cast
from uuid import UUID

from eventsourcing.domain import CanMutateProtocol

from ledger.store.mapper import domain_event_of

# What a replay needs of a row, in this order (a plain tuple row: the fastest to fetch).
REPLAY_COLUMNS = "stream_id, version, event_type, schema_version, data, occurred_at"

Row = tuple[UUID, int, str, int, dict[str, Any], datetime]


def apply_row(aggregate: Any, row: Row) -> Any:
    """`aggregate` (None before the first event) with the row's event applied."""
    stream_id, version, event_type, schema_version, data, occurred_at = row
    event = domain_event_of(
        event_type,
        schema_version,
        data,
        originator_id=stream_id,
        originator_version=version,
        timestamp=occurred_at,
    )
    # A cast, not isinstance(): a runtime Protocol check costs more than the mutation.
    return cast("CanMutateProtocol[Any]", event).mutate(aggregate)


def fold_streams(
    rows: Iterable[Row], carried: tuple[UUID, Any] | None = None
) -> Iterator[tuple[UUID, Any, bool]]:
    """Fold rows ordered by (stream, version) into aggregates.

    Yields (stream id, aggregate, complete) for each stream; the last one is yielded
    with `complete=False`, since the next batch of rows may continue it: pass it back as
    `carried` with that batch.
    """
    current_id, aggregate = carried if carried is not None else (None, None)
    for row in rows:
        if row[0] != current_id:
            if current_id is not None:
                yield current_id, aggregate, True
            current_id, aggregate = row[0], None
        aggregate = apply_row(aggregate, row)
    if current_id is not None:
        yield current_id, aggregate, False


def replay(rows: Iterable[Row]) -> Any:
    """The aggregate of one stream's rows, in version order (None when there are none)."""
    aggregate = None
    for row in rows:
        aggregate = apply_row(aggregate, row)
    return aggregate
