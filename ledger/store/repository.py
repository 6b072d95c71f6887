"""The library's Repository, loading the latest state of a stream in one round trip.

`Repository._reconstruct_aggregate` reads the latest snapshot, then the events after it:
two transactions of our recorders (BEGIN; set the tenant; SELECT; COMMIT), for every
aggregate every command loads. Here the latest state is one autocommit call of
`load_stream` (migration 0014); reads at a past version (`version=`) keep the library's
path. The reconstruction itself is the library's: the same mappers decode the rows and
the same projector function applies them.
"""

from __future__ import annotations

from itertools import chain
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.application import ProjectorFunction
from eventsourcing.application import Repository
from eventsourcing.postgres import PostgresDatastore

from ledger.store.recorder import select_stream
from ledger.store.tenancy import require_tenant


class OneTripRepository(Repository[UUID]):
    def __init__(self, *args: Any, datastore: PostgresDatastore, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._datastore = datastore

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
        return aggregate
