"""The library's PostgreSQL infrastructure factory, made tenant-aware.

Selected with `PERSISTENCE_MODULE=ledger.store.factory:LedgerFactory`. Every pooled
connection starts as the app role (`-c role=licentric_app`): not the owner, not
superuser, no BYPASSRLS, so row-level security applies even when the deployment's URL
names a superuser, and `RESET ROLE` cannot escape to the owner.
"""

from __future__ import annotations

from eventsourcing.persistence import AggregateRecorder
from eventsourcing.postgres import PostgresFactory

from ledger.store.recorder import TenantRecorder
from ledger.store.recorder import TenantSnapshotRecorder

APP_ROLE = "licentric_app"
STATEMENT_TIMEOUT_MS = "LICENTRIC_STATEMENT_TIMEOUT_MS"


class LedgerFactory(PostgresFactory):
    application_recorder_class = TenantRecorder
    aggregate_recorder_class = TenantSnapshotRecorder

    def __init__(self, env: object) -> None:
        super().__init__(env)  # type: ignore[arg-type]
        timeout_ms = int(self.env.get(STATEMENT_TIMEOUT_MS) or "5000")
        # The pool is not open yet: these options apply to every connection it makes.
        connect_kwargs = self.datastore.pool.kwargs
        assert isinstance(connect_kwargs, dict)
        connect_kwargs["options"] = f"-c role={APP_ROLE} -c statement_timeout={timeout_ms}"

    def aggregate_recorder(self, purpose: str = "events") -> AggregateRecorder:
        # The application asks for an aggregate recorder only for its snapshots.
        assert purpose == "snapshots", purpose
        return TenantSnapshotRecorder(self.datastore)
