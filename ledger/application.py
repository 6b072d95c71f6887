"""The ledger application: the library's `Application` wired to our tenant-aware store.

Commands run through `execute()`: load aggregates, run a pure command, save the new
events and their inline projections in one transaction; when another command appended
to the same stream first (unique (tenant, stream, version)), reload and run again.
This is what makes seat limits, usage caps and transitions exact under concurrency.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from contextlib import contextmanager
from typing import Any
from typing import ClassVar
from typing import TypeVar
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.application import Repository
from eventsourcing.domain import MutableOrImmutableAggregate
from psycopg import Cursor
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow

from ledger.domain.account import Account
from ledger.domain.api_key import ApiKey
from ledger.domain.entitlement import Entitlement
from ledger.domain.environment import Environment
from ledger.domain.license import License
from ledger.domain.policy import Policy
from ledger.domain.product import Product
from ledger.domain.validation_record import ValidationRecord
from ledger.domain.webhook_endpoint import WebhookEndpoint
from ledger.projection import InlineProjector
from ledger.store import local_changes
from ledger.store.mapper import EventNames
from ledger.store.mapper import saving
from ledger.store.recorder import ConcurrencyConflictError
from ledger.store.recorder import Projector
from ledger.store.recorder import TenantRecorder
from ledger.store.recorder import tenant_transaction
from ledger.store.repository import OneTripRepository
from ledger.store.stream_locks import StreamLocks
from ledger.store.tenancy import current_tenant
from ledger.store.tenancy import tenant_scope

T = TypeVar("T")
_jitter = random.Random()  # noqa: S311 (timing jitter, not a secret)

DEFAULT_COMMAND_ATTEMPTS = 50
# Lost races on one stream before a command takes the stream's lock (`execute`).
ESCALATE_AFTER = 3

STREAMS: tuple[type[MutableOrImmutableAggregate[Any]], ...] = (
    Account,
    Environment,
    ApiKey,
    Product,
    Policy,
    Entitlement,
    License,
    ValidationRecord,
    WebhookEndpoint,
)


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
        # Also the pool's wait for a free connection: with the database down a request
        # fails (503) within 2 s instead of hanging (API.md §2).
        "POSTGRES_CONNECT_TIMEOUT": "2",
        # No pre-ping: it costs a round trip per checkout; broken connections surface
        # as OperationalError (503) and the pool replaces them.
        "POSTGRES_PRE_PING": "n",
    }


# Streams whose changes cannot alter what a validation or an authentication reads
# (accounts, webhooks, the validation records themselves). Licenses, policies and API
# keys are announced by id below; any other stream as a change of its whole tenant
# (products, entitlements: rare, and their projections may touch licenses).
_NOT_FACTS = frozenset({"account", "webhook_endpoint", "validation"})


def announced_changes(aggregates: tuple[Any, ...]) -> Iterator[str]:
    tenant = current_tenant()
    if tenant is None:
        return
    for aggregate in aggregates:
        stream = getattr(aggregate, "stream_type", "")
        if stream == "license":
            yield local_changes.license_changed(tenant, aggregate.id)
        elif stream == "policy":
            yield local_changes.policy_changed(tenant, aggregate.id)
        elif stream == "api_key":
            yield local_changes.api_key_changed(tenant, aggregate.id)
        elif stream not in _NOT_FACTS:
            yield local_changes.tenant_changed(tenant)


def conflict_backoff(attempt: int) -> None:
    """After the `attempt`-th lost race on a stream (0-based): nothing the first times,
    then a random pause growing to 50 ms. Without it a slow command (a suspension:
    load, replay, project) can lose to a stream of fast writers of the same license
    (checkouts) again and again; with it they spread out and each gets its turn."""
    if attempt >= 2:
        time.sleep(_jitter.uniform(0, min(0.05, 0.0005 * 2**attempt)))


class LedgerApplication(Application[UUID]):
    name = "licentric"
    is_snapshotting_enabled = True
    # A license stream holds its machines, checkouts and usage, so it grows; a snapshot
    # every 100 events keeps loading it O(1) in its history length.
    snapshotting_intervals: ClassVar[dict[type[MutableOrImmutableAggregate[Any]], int]] = {
        License: 100
    }

    def __init__(
        self,
        database_url: str,
        *,
        pool_size: int = 5,
        projector: InlineProjector | None = None,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.projector = projector
        self.stream_locks = StreamLocks(database_url)
        env = postgres_env(database_url, pool_size=pool_size)
        env.update(extra_env or {})
        EventNames.register(*STREAMS)
        super().__init__(env=env)

    def construct_repository(self) -> Repository[UUID]:
        # The library's, with every latest-state load in one round trip
        # (ledger/store/repository.py). No aggregate cache: our env sets none.
        recorder = self.events.recorder
        assert isinstance(recorder, TenantRecorder)
        return OneTripRepository(
            event_store=self.events,
            snapshot_store=self.snapshots,
            datastore=recorder.datastore,
            snapshot_intervals=self.snapshotting_intervals,
        )

    @property
    def tenant_recorder(self) -> TenantRecorder:
        recorder = self.recorder
        assert isinstance(recorder, TenantRecorder)
        return recorder

    def save(self, *objs: Any, **kwargs: Any) -> Any:
        with saving(objs):
            recordings = super().save(*objs, **kwargs)
        # Committed: tell this process's caches now (ledger/store/local_changes.py).
        local_changes.announce(announced_changes(objs))
        return recordings

    def save_in(
        self,
        tenant_id: UUID,
        *aggregates: MutableOrImmutableAggregate[UUID],
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Append the aggregates' pending events and project them, in one transaction."""
        project: Projector | None = None
        projector = self.projector
        if projector is not None:

            def project(curs: Cursor[DictRow]) -> None:
                projector.project(curs, tenant_id, aggregates)

        with tenant_scope(tenant_id):
            self.save(*aggregates, metadata=dict(metadata or {}), project=project)

    def execute(
        self,
        tenant_id: UUID,
        command: Callable[[], T],
        *,
        attempts: int = DEFAULT_COMMAND_ATTEMPTS,
        stream: UUID | None = None,
    ) -> T:
        """Run `command` (which loads, decides and saves) until no stream conflict.

        `stream`: the one stream the command changes. After `ESCALATE_AFTER` lost races
        on it, the remaining attempts hold the stream's exclusive lock (`_exclusively`):
        optimistic concurrency alone lets a slow command lose to a steady flow of fast
        writers of the same stream (checkouts, migration 0016) every time.
        """
        with tenant_scope(tenant_id):
            for attempt in range(attempts - 1):
                if stream is not None and attempt == ESCALATE_AFTER:
                    return self._exclusively(tenant_id, stream, command, attempts - attempt)
                try:
                    return command()
                except ConcurrencyConflictError:
                    conflict_backoff(attempt)
            return command()

    def _exclusively(
        self, tenant_id: UUID, stream: UUID, command: Callable[[], T], attempts: int
    ) -> T:
        """`command`'s attempts while holding the stream's advisory lock, which fast
        writers take shared in the statement that appends (ledger/store/stream_locks.py):
        they wait while this runs, then find their version taken and decide again."""
        with self.stream_locks.held(tenant_id, stream):
            for attempt in range(attempts - 1):
                try:
                    return command()
                except ConcurrencyConflictError:
                    conflict_backoff(attempt)  # another command on the stream
            return command()

    @contextmanager
    def reading(self, tenant_id: UUID) -> Iterator[Cursor[DictRow]]:
        """A transaction on the app's pool in which row-level security sees `tenant_id`.

        Read models are queried here: the same pool and role as the writes, and the
        tenant setting ends with the transaction.
        """
        datastore = self.factory.datastore  # type: ignore[attr-defined]
        with tenant_transaction(datastore, tenant_id) as curs:
            yield curs

    @contextmanager
    def transaction(self) -> Iterator[Cursor[DictRow]]:
        """A transaction with no tenant set: RLS shows nothing until one is set."""
        datastore = self.factory.datastore  # type: ignore[attr-defined]
        with datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            yield curs

    @contextmanager
    def autocommit(self) -> Iterator[Cursor[DictRow]]:
        """A cursor whose every statement is its own transaction: one round trip each.

        For single-statement reads (the validation hot path): with no BEGIN/COMMIT
        around it, a tenant the statement sets for itself ends with the statement.
        """
        datastore = self.factory.datastore  # type: ignore[attr-defined]
        with datastore.get_connection() as conn, conn.cursor() as curs:
            yield curs

    def close(self) -> None:
        self.tenant_recorder.wakeups.close()
        self.stream_locks.close()
        self.factory.close()
