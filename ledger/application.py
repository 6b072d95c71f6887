"""The ledger application: the library's `Application` wired to our tenant-aware store.

Commands run through `execute()`: load aggregates, run a pure command, save the new
events and their inline projections in one transaction; when another command appended
to the same stream first (unique (tenant, stream, version)), reload and run again.
This is what makes seat limits, usage caps and transitions exact under concurrency.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from typing import Any
from typing import ClassVar
from typing import TypeVar
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import MutableOrImmutableAggregate
from psycopg.conninfo import conninfo_to_dict

from ledger.store.recorder import ConcurrencyConflictError
from ledger.store.recorder import Projector
from ledger.store.tenancy import tenant_scope

T = TypeVar("T")

DEFAULT_COMMAND_ATTEMPTS = 50


def postgres_env(
    database_url: str, *, pool_size: int = 5, max_overflow: int = 10
) -> dict[str, str]:
    """The library's POSTGRES_* settings from a libpq URL (socket hosts included)."""
    params = conninfo_to_dict(database_url)
    return {
        "PERSISTENCE_MODULE": "ledger.store.factory:LedgerFactory",
        "APPLICATION_RECORDER_TOPIC": "ledger.store.recorder:TenantRecorder",
        "MAPPER_TOPIC": "ledger.store.mapper:StableNameMapper",
        "CREATE_TABLE": "n",
        "POSTGRES_DBNAME": str(params.get("dbname") or "postgres"),
        "POSTGRES_HOST": str(params.get("host") or "127.0.0.1"),
        "POSTGRES_PORT": str(params.get("port") or "5432"),
        "POSTGRES_USER": str(params.get("user") or "postgres"),
        "POSTGRES_PASSWORD": str(params.get("password") or ""),
        "POSTGRES_POOL_SIZE": str(pool_size),
        "POSTGRES_MAX_OVERFLOW": str(max_overflow),
        "POSTGRES_CONNECT_TIMEOUT": "5",
        # No pre-ping: it costs a round trip per checkout; broken connections surface
        # as OperationalError (503) and the pool replaces them.
        "POSTGRES_PRE_PING": "n",
    }


class LedgerApplication(Application[UUID]):
    name = "licentric"
    is_snapshotting_enabled = True
    # Filled by `configure_streams`: {aggregate class: snapshot every N events}.
    snapshotting_intervals: ClassVar[dict[type[MutableOrImmutableAggregate[Any]], int]] = {}

    def __init__(
        self, database_url: str, *, pool_size: int = 5, extra_env: Mapping[str, str] = ()
    ) -> None:  # type: ignore[assignment]
        env = postgres_env(database_url, pool_size=pool_size)
        env.update(dict(extra_env))
        super().__init__(env=env)

    def save_in(
        self,
        tenant_id: UUID,
        *aggregates: MutableOrImmutableAggregate[UUID],
        metadata: Mapping[str, Any] | None = None,
        project: Projector | None = None,
    ) -> None:
        """Append the aggregates' pending events (and run `project`) in one transaction."""
        with tenant_scope(tenant_id):
            self.save(*aggregates, metadata=dict(metadata or {}), project=project)

    def execute(
        self,
        tenant_id: UUID,
        command: Callable[[], T],
        *,
        attempts: int = DEFAULT_COMMAND_ATTEMPTS,
    ) -> T:
        """Run `command` (which loads, decides and saves) until no stream conflict."""
        with tenant_scope(tenant_id):
            for _ in range(attempts - 1):
                try:
                    return command()
                except ConcurrencyConflictError:
                    continue
            return command()

    def close(self) -> None:
        self.factory.close()
