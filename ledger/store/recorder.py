"""The library's PostgreSQL recorders, subclassed for tenancy, ordering and the hash chain.

Selected by topic (`APPLICATION_RECORDER_TOPIC`, see `ledger.store.factory`). What changes
against the stock `PostgresApplicationRecorder`, and why:

- every statement runs inside a transaction that first sets `app.tenant`: under row-level
  security the stock autocommit reads would see nothing;
- no `LOCK TABLE … EXCLUSIVE`: each tenant's `log_heads` row is locked instead, so
  positions are gapless and in commit order per tenant, and tenants append in parallel;
- each event row carries tenant, position, stable type name + schema version, JSON data,
  metadata, recorded-at and its link in the tenant's hash chain;
- callers may pass `project=<callable(cursor)>` to `save()`: inline read models are
  written in the same transaction as the events (read-your-writes, all or nothing).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
import psycopg
from eventsourcing.persistence import IntegrityError
from eventsourcing.persistence import Notification
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresAggregateRecorder
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.postgres import PostgresDatastore
from psycopg import Cursor
from psycopg.rows import DictRow

from ledger.store.hashchain import ChainedEvent
from ledger.store.mapper import split_topic
from ledger.store.tenancy import require_tenant
from ledger.store.tenancy import set_transaction_tenant
from ledger.store.wakeups import WakeupNotifier

# Event ids are derived, not random: (tenant, stream, version) is unique forever, so the
# id is too, and a rebuild or an export reproduces the same ids.
_EVENT_ID_NAMESPACE = UUID("5a0e3c8e-7d0b-4b8e-9f1e-6c1f3d1b2a90")


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


Projector = Callable[[Cursor[DictRow]], None]


class ConcurrencyConflictError(IntegrityError):
    """Another command appended to the same stream first; reload and retry."""


class DuplicateKeyError(IntegrityError):
    """A read model's unique index refused the change (e.g. a product code taken).

    The whole transaction, events included, was rolled back. `constraint` names the
    index so the command layer can say which field clashed.
    """

    def __init__(self, message: str, constraint: str) -> None:
        super().__init__(message)
        self.constraint = constraint


_APPEND = """
SELECT append_events(%s, %s::jsonb, %s::jsonb, %s) AS last
"""

_LOAD_STREAM = "SELECT * FROM load_stream(%s, %s)"
_SELECT_STREAM = """
SELECT stream_id, version, event_type, schema_version, data, occurred_at
FROM events WHERE tenant_id = %s AND stream_id = %s
"""


def _is_stream_version_conflict(error: psycopg.errors.UniqueViolation) -> bool:
    # Partitions name their copy of the constraint after themselves
    # (events_p3_tenant_id_stream_id_version_key), so match on the shape.
    constraint = error.diag.constraint_name or ""
    return (error.diag.table_name or "").startswith("events") and (
        "stream" in constraint and "version" in constraint
    )


def stored_event_from_row(row: DictRow) -> StoredEvent:
    body = {"occurredAt": row["occurred_at"].isoformat(), "data": row["data"]}
    return StoredEvent(
        originator_id=row["stream_id"],
        originator_version=row["version"],
        topic=f"{row['event_type']}@{row['schema_version']}",
        state=orjson.dumps(body),
    )


_NAMESPACE_BYTES = _EVENT_ID_NAMESPACE.bytes
_VARIANT_AND_VERSION_BITS = ~(0xC000 << 48) & ~(0xF000 << 64)
_RFC_4122_V5 = (0x8000 << 48) | (5 << 76)


@dataclass(frozen=True)
class RecordedWith:
    """A SQL function that appends through `append_events` and writes, in the same
    call, the read-model rows the events change (`record_checkout`, migration 0016).
    It takes append_events' four arguments first, then `params`."""

    function: str
    params: tuple[Any, ...]

    def statement(self) -> str:
        assert self.function in _RECORDING_FUNCTIONS, self.function  # never caller text
        extra = ", %s" * len(self.params)
        return f"SELECT {self.function}(%s, %s::jsonb, %s::jsonb, %s{extra}) AS last"


_RECORDING_FUNCTIONS = frozenset({"record_checkout"})


def event_id_of(tenant: UUID, stream_id: UUID, version: int) -> UUID:
    """`uuid5(_EVENT_ID_NAMESPACE, "<tenant>:<stream>:<version>")`, computed as the
    standard library does (RFC 4122 §4.3: SHA-1, version and variant bits set) at half
    the cost: once per appended event (a unit test compares it with `uuid5`)."""
    name = f"{tenant}:{stream_id}:{version}".encode()
    digest = hashlib.sha1(_NAMESPACE_BYTES + name).digest()  # noqa: S324 (RFC 4122's hash)
    value = int.from_bytes(digest[:16], "big") & _VARIANT_AND_VERSION_BITS
    return UUID(int=value | _RFC_4122_V5)


@contextmanager
def _translated_integrity_errors() -> Iterator[None]:
    """A stream's (tenant, stream, version) taken -> ConcurrencyConflictError; another
    unique index of a read model -> DuplicateKeyError naming it."""
    try:
        yield
    except IntegrityError as e:
        cause = e.__cause__
        if isinstance(cause, psycopg.errors.UniqueViolation) and (
            _is_stream_version_conflict(cause)
        ):
            raise ConcurrencyConflictError(str(e)) from cause
        if isinstance(cause, psycopg.errors.UniqueViolation):
            constraint = cause.diag.constraint_name or ""
            raise DuplicateKeyError(str(e), constraint) from cause
        raise


@contextmanager
def tenant_transaction(datastore: PostgresDatastore, tenant: UUID) -> Iterator[Cursor[DictRow]]:
    """One transaction in which row-level security sees `tenant`."""
    with datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
        set_transaction_tenant(curs, tenant)
        yield curs


class TenantRecorder(PostgresApplicationRecorder):
    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "events"):
        super().__init__(datastore, events_table_name="events")
        # The schema belongs to the numbered migrations, not to recorder construction.
        self.sql_create_statements = []
        # Ordering comes from the per-tenant head row (see module docstring).
        self.lock_table_statements = []
        self.wakeups = WakeupNotifier(datastore)

    def create_table(self) -> None:
        """Migrations own the schema (`licentric migrate`)."""

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        tenant = require_tenant()
        project: Projector | None = kwargs.get("project")
        metadata: dict[str, Any] = kwargs.get("metadata") or {}
        positions: list[int] = []

        def chained(recorded_at: datetime) -> list[ChainedEvent]:
            return [self.chained(tenant, e, metadata, recorded_at) for e in stored_events]

        with _translated_integrity_errors(), self.datastore.get_connection() as conn:
            if project is None and kwargs.get("tracking") is None:
                # One autocommit statement: append_events is atomic on its own.
                positions = self._append(conn, tenant, chained, metadata)
            else:
                with conn.transaction(), conn.cursor() as curs:
                    set_transaction_tenant(curs, tenant)
                    self._insert_events(curs, stored_events, **kwargs)
                    positions = self._append(conn, tenant, chained, metadata)
                    if project is not None:
                        project(curs)
        if positions:
            self.wakeups.touched(tenant)
        return positions

    def append_chained(
        self,
        events: Callable[[datetime], Sequence[ChainedEvent]],
        metadata: dict[str, Any],
        *,
        recorded_with: RecordedWith | None = None,
    ) -> list[int]:
        """Append events the caller builds itself for a `recorded_at`, in one autocommit
        statement, to the current tenant's log: for one-event streams that no aggregate
        backs (validation records), where going through StoredEvent would encode and
        decode every event twice (~40 -> ~10 µs of Python per event). The same rows,
        ids and chain links as `insert_events` makes (a unit test compares them)."""
        tenant = require_tenant()
        with _translated_integrity_errors(), self.datastore.get_connection() as conn:
            positions = self._append(conn, tenant, events, metadata, recorded_with)
        if positions:
            self.wakeups.touched(tenant)
        return positions

    def _append(
        self,
        conn: psycopg.Connection[DictRow],
        tenant: UUID,
        chained: Callable[[datetime], Sequence[ChainedEvent]],
        metadata: dict[str, Any],
        recorded_with: RecordedWith | None = None,
    ) -> list[int]:
        recorded_at = datetime.now(UTC)
        events = chained(recorded_at)
        if not events:
            return []
        batch = orjson.dumps([e.append_row() for e in events]).decode()
        params: tuple[Any, ...] = (tenant, batch, _dumps(metadata), recorded_at)
        statement = _APPEND
        if recorded_with is not None:
            statement = recorded_with.statement()
            params += recorded_with.params
        row = conn.execute(statement, params, prepare=True).fetchone()
        assert row is not None
        last = int(row["last"])
        return list(range(last - len(events) + 1, last + 1))

    @staticmethod
    def chained(
        tenant: UUID, stored: StoredEvent, metadata: dict[str, Any], recorded_at: datetime
    ) -> ChainedEvent:
        """The log row of a stored event (what `insert_events` appends)."""
        event_type, schema_version = split_topic(stored.topic)
        body = orjson.loads(stored.state)
        stream_id = stored.originator_id
        assert isinstance(stream_id, UUID)
        return ChainedEvent(
            tenant_id=tenant,
            stream_id=stream_id,
            stream_type=event_type.partition(".")[0],
            version=stored.originator_version,
            event_id=event_id_of(tenant, stream_id, stored.originator_version),
            event_type=event_type,
            schema_version=schema_version,
            data=body["data"],
            metadata=metadata,
            occurred_at=datetime.fromisoformat(body["occurredAt"]),
            recorded_at=recorded_at,
        )

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        tenant = require_tenant()
        sql = _SELECT_STREAM
        params: list[Any] = [tenant, originator_id]
        if gt is not None:
            sql += " AND version > %s"
            params.append(gt)
        if lte is not None:
            sql += " AND version <= %s"
            params.append(lte)
        sql += " ORDER BY version DESC" if desc else " ORDER BY version"
        if limit is not None:
            sql += " LIMIT %s"
            params.append(limit)
        with tenant_transaction(self.datastore, tenant) as curs:
            curs.execute(sql, params, prepare=True)
            return [stored_event_from_row(row) for row in curs.fetchall()]

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        """The current tenant's log; notification ids are its positions."""
        tenant = require_tenant()
        first = 1 if start is None else (start if inclusive_of_start else start + 1)
        sql = (
            "SELECT position, stream_id, version, event_type, schema_version, data, occurred_at"
            " FROM events WHERE tenant_id = %s AND position >= %s"
        )
        params: list[Any] = [tenant, first]
        if stop is not None:
            sql += " AND position <= %s"
            params.append(stop)
        if topics:
            sql += " AND event_type = ANY(%s)"
            params.append([split_topic(t)[0] for t in topics])
        sql += " ORDER BY position LIMIT %s"
        params.append(limit)
        with tenant_transaction(self.datastore, tenant) as curs:
            curs.execute(sql, params, prepare=True)
            return [
                Notification(id=row["position"], **vars(stored_event_from_row(row)))
                for row in curs.fetchall()
            ]

    def max_notification_id(self) -> int | None:
        tenant = require_tenant()
        with tenant_transaction(self.datastore, tenant) as curs:
            curs.execute("SELECT position FROM log_heads WHERE tenant_id = %s", (tenant,))
            row = curs.fetchone()
            return None if row is None else int(row["position"])


def select_stream(
    datastore: PostgresDatastore, tenant: UUID, stream_id: UUID
) -> tuple[StoredEvent | None, list[StoredEvent]]:
    """The stream's latest snapshot (or None) and its events after it, in one round
    trip (`load_stream`, migration 0014), as the two recorders' selects return them."""
    with datastore.get_connection() as conn:
        rows = conn.execute(_LOAD_STREAM, (tenant, stream_id), prepare=True).fetchall()
    snapshot: StoredEvent | None = None
    events: list[StoredEvent] = []
    for row in rows:
        if row["topic"] is not None:
            snapshot = StoredEvent(
                originator_id=stream_id,
                originator_version=row["version"],
                topic=row["topic"],
                state=bytes(row["state"]),
            )
        else:
            events.append(stored_event_from_row({**row, "stream_id": stream_id}))
    return snapshot, events


class TenantSnapshotRecorder(PostgresAggregateRecorder):
    """Snapshots per tenant, same transaction discipline as the events."""

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "snapshots"):
        super().__init__(datastore, events_table_name="snapshots")
        self.sql_create_statements = []

    def create_table(self) -> None:
        """Migrations own the schema."""

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        tenant = require_tenant()
        with tenant_transaction(self.datastore, tenant) as curs:
            curs.executemany(
                "INSERT INTO snapshots (tenant_id, stream_id, version, topic, state)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                [
                    (tenant, s.originator_id, s.originator_version, s.topic, s.state)
                    for s in stored_events
                ],
            )
        return None

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        tenant = require_tenant()
        sql = (
            "SELECT stream_id, version, topic, state FROM snapshots"
            " WHERE tenant_id = %s AND stream_id = %s"
        )
        params: list[Any] = [tenant, originator_id]
        if gt is not None:
            sql += " AND version > %s"
            params.append(gt)
        if lte is not None:
            sql += " AND version <= %s"
            params.append(lte)
        sql += " ORDER BY version DESC" if desc else " ORDER BY version"
        if limit is not None:
            sql += " LIMIT %s"
            params.append(limit)
        with tenant_transaction(self.datastore, tenant) as curs:
            curs.execute(sql, params, prepare=True)
            return [
                StoredEvent(
                    originator_id=row["stream_id"],
                    originator_version=row["version"],
                    topic=row["topic"],
                    state=bytes(row["state"]),
                )
                for row in curs.fetchall()
            ]
