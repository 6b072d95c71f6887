"""The library's Repository, loading the latest state of a stream in one round trip.

`Repository._reconstruct_aggregate` reads the latest snapshot, then the events after it:
two transactions of our recorders (BEGIN; set the tenant; SELECT; COMMIT), for every
aggregate every command loads. Here the latest state is one autocommit call of
`load_stream` (migration 0014); reads at a past version (`version=`) keep the library's
path. The reconstruction itself is the library's: the same mappers decode the rows and
the same projector function applies them.

A load that had to replay a whole snapshot interval or more stores a snapshot of what it
built (no second reconstruction): saves snapshot the versions they cross, but an offline
checkout appends without loading or saving an aggregate, so a license that only gets
checkouts grows past its snapshot until the re-signer (workers/resigner.py) or, if no
worker runs, the next load like this one catches up.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import chain
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.application import ProjectorFunction
from eventsourcing.application import Repository
from eventsourcing.domain import Snapshot
from eventsourcing.postgres import PostgresDatastore

from ledger.store.recorder import select_stream
from ledger.store.tenancy import require_tenant


class OneTripRepository(Repository[UUID]):
    def __init__(
        self,
        *args: Any,
        datastore: PostgresDatastore,
        snapshot_intervals: Mapping[type, int] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._datastore = datastore
        self._snapshot_intervals = dict(snapshot_intervals or {})

    def _reconstruct_aggregate(
        self,
        aggregate_id: UUID,
        version: int | None,
        projector_func: ProjectorFunction[Any, Any],
    ) -> Any:
        if version is not None or self.snapshot_store is None:
            return super()._reconstruct_aggregate(aggregate_id, version, projector_func)
        snapshot, stored = select_stream(self._datastore, require_tenant(), aggregate_id)
        snapshots = (
            [] if snapshot is None else [self.snapshot_store.mapper.to_domain_event(snapshot)]
        )
        events = (self.event_store.mapper.to_domain_event(e) for e in stored)
        aggregate = projector_func(None, chain(snapshots, events))
        if aggregate is None:
            msg = f"Aggregate {aggregate_id!r} version None not found."
            raise AggregateNotFoundError(msg)
        interval = self._snapshot_intervals.get(type(aggregate))
        if interval is not None and len(stored) >= interval:
            snapshot_class = getattr(type(aggregate), "Snapshot", Snapshot)
            # ON CONFLICT DO NOTHING (TenantSnapshotRecorder): two loads may both store it.
            self.snapshot_store.put([snapshot_class.take(aggregate)])
        return aggregate
