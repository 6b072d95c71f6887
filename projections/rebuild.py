"""Rebuild inline read models from the events alone (`licentric projections rebuild`).

Per tenant:

1. read the log head P; shadow every table the selected models own or touch with a
   session-local temporary table of the same name and shape (temporary tables come
   first in the search path, so the writers' unqualified SQL lands there), and copy the
   tenant's live rows of the merely touched tables into their shadows;
2. read the tenant's events of the models' stream types up to P in (stream, version)
   order, a few hundred per transaction, fold each stream into its aggregate
   (`ledger.store.replay`) and run the model's writer on it: the live path's own code;
3. take the tenant's log-head lock (appends of that tenant wait, nobody else does),
   replay the streams appended since P, then compare the owned rows with the live ones
   (`verify`) or replace the live rows that differ (one transaction per tenant).

Everything but the final replacement runs as the auditor role, which may read every
tenant's log but write no live table; the replacement runs as the owner.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from uuid import UUID

import orjson
import psycopg
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row
from psycopg.types.json import set_json_dumps
from psycopg.types.json import set_json_loads

from ledger.application import STREAMS
from ledger.audit.auditor import AUDITOR_ROLE
from ledger.audit.auditor import TenantHead
from ledger.audit.auditor import list_tenants
from ledger.store.mapper import EventNames
from ledger.store.replay import REPLAY_COLUMNS
from ledger.store.replay import fold_streams
from ledger.store.replay import replay
from ledger.store.tenancy import set_transaction_tenant
from projections.read_models import ReadModel
from projections.read_models import RowWriter
from projections.shadows import Difference
from projections.shadows import create_shadows
from projections.shadows import differences
from projections.shadows import drop_shadows
from projections.shadows import replace_rows
from projections.shadows import reset_shadows

DEFAULT_BATCH = 500

# The tenant's rows of the models' streams, in (stream, version) order: read through a
# server-side cursor on a second connection, so rows stream in while writes commit.
TENANT_ROWS = f"""
SELECT {REPLAY_COLUMNS} FROM public.events
WHERE tenant_id = %s AND stream_type = ANY(%s) AND position <= %s
ORDER BY stream_id, version
"""  # noqa: S608 (fixed text)

_APPENDED_SINCE = """
SELECT DISTINCT stream_id FROM public.events
WHERE tenant_id = %s AND stream_type = ANY(%s) AND position > %s AND position <= %s
"""

_STREAM = f"""
SELECT {REPLAY_COLUMNS} FROM public.events
WHERE tenant_id = %s AND stream_id = %s ORDER BY version
"""  # noqa: S608 (fixed text)


@dataclass
class RebuildReport:
    tenants: int = 0
    events: int = 0
    differences: list[Difference] = field(default_factory=list)
    rows_replaced: int = 0


class Rebuild:
    """One run over one owner connection (autocommit); see the module docstring."""

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        models: Sequence[ReadModel],
        *,
        verify: bool,
        batch: int = DEFAULT_BATCH,
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        if not conn.autocommit:
            raise ValueError("the rebuild connection must be in autocommit mode")
        EventNames.register(*STREAMS)
        self._conn = conn
        self._verify = verify
        self._batch = batch
        self._progress = on_progress or (lambda n: None)
        self._writers: dict[type, list[RowWriter]] = {}
        for model in models:
            writers = self._writers.setdefault(model.aggregate, [])
            if model.writer not in writers:
                writers.append(model.writer)
        self._stream_types = sorted({m.stream_type for m in models})
        self._owned = list(dict.fromkeys(t for m in models for t in m.owns))
        owned_names = {t.name for t in self._owned}
        touched = (name for m in models for name in m.touches)
        self._copied = [n for n in dict.fromkeys(touched) if n not in owned_names]
        self._shadowed = [*dict.fromkeys(t.name for t in self._owned), *self._copied]
        # JSON either way; orjson is what lets a replay keep up with the read.
        set_json_loads(orjson.loads, conn)
        set_json_dumps(orjson.dumps, conn)

    def run(self, tenants: Sequence[TenantHead] | None = None) -> RebuildReport:
        conn = self._conn
        conn.execute(f"SET ROLE {AUDITOR_ROLE}")
        try:
            with _second_connection(conn) as self._reader, _Writer(self._write) as self._writer:
                heads = list(tenants) if tenants is not None else list_tenants(conn)
                self._create_shadows()
                report = RebuildReport()
                for head in heads:
                    self._tenant(head, report)
                return report
        finally:
            self._drop_shadows()
            conn.execute("RESET ROLE")

    # Shadows

    def _create_shadows(self) -> None:
        create_shadows(self._conn, self._shadowed)

    def _drop_shadows(self) -> None:
        drop_shadows(self._conn, self._shadowed)

    def _reset_shadows(self, tenant_id: UUID) -> None:
        with self._conn.transaction(), self._conn.cursor() as curs:
            set_transaction_tenant(curs, tenant_id)
            reset_shadows(curs, tenant_id, self._shadowed, self._copied)

    # Replay

    def _tenant(self, head: TenantHead, report: RebuildReport) -> None:
        tenant_id = head.tenant_id
        self._reset_shadows(tenant_id)
        read = self._replay(tenant_id, head.position)
        # Rows of other stream types were not read: the bar still covers the whole log.
        self._progress(head.position - read)
        report.events += read
        report.tenants += 1
        self._settle(head, report)

    def _replay(self, tenant_id: UUID, upto: int) -> int:
        reader, read, carried = self._reader, 0, None
        with reader.transaction(), reader.cursor(name="rebuild_rows") as rows_cursor:
            rows_cursor.itersize = self._batch
            rows_cursor.execute(TENANT_ROWS, (tenant_id, self._stream_types, upto))
            while True:
                rows = rows_cursor.fetchmany(self._batch)
                last_batch = len(rows) < self._batch
                complete: list[Any] = []
                carried_now = None
                for stream_id, aggregate, done in fold_streams(rows, carried):
                    if done:
                        complete.append(aggregate)
                    else:
                        carried_now = (stream_id, aggregate)
                if last_batch and carried_now is not None:
                    complete.append(carried_now[1])
                self._writer.submit(tenant_id, complete)
                read += len(rows)
                self._progress(len(rows))
                if last_batch:
                    self._writer.drain()
                    return read
                carried = carried_now

    def _write(self, tenant_id: UUID, aggregates: list[Any]) -> None:
        """One batch's rows, in one transaction (on the writer thread)."""
        with self._conn.transaction(), self._conn.cursor() as curs:
            set_transaction_tenant(curs, tenant_id)
            self._project(tenant_id, aggregates)

    def _project(self, tenant_id: UUID, aggregates: list[Any]) -> None:
        if not aggregates:
            return
        # Pipeline mode: the writers' statements go out without waiting for each reply
        # (a read a writer needs still syncs); round trips, not replay, are the cost here.
        with self._conn.pipeline(), self._conn.cursor(row_factory=dict_row) as curs:
            for aggregate in aggregates:
                for writer in self._writers.get(type(aggregate), ()):
                    writer(curs, tenant_id, aggregate)

    # Settling against the live tables

    def _settle(self, head: TenantHead, report: RebuildReport) -> None:
        conn, tenant_id = self._conn, head.tenant_id
        with conn.transaction(), conn.cursor() as curs:
            set_transaction_tenant(curs, tenant_id)
            # As the owner: the lock needs UPDATE rights. Held to commit, it makes the
            # tenant's appends (and their inline projections) wait until we are done.
            curs.execute("RESET ROLE")
            row = curs.execute(
                "SELECT position FROM public.log_heads WHERE tenant_id = %s FOR UPDATE",
                (tenant_id,),
            ).fetchone()
            curs.execute(f"SET ROLE {AUDITOR_ROLE}")
            now = 0 if row is None else int(row[0])
            if now > head.position:
                self._catch_up(curs, tenant_id, head.position, now)
                self._progress(now - head.position)
            if self._verify:
                for table in self._owned:
                    report.differences.extend(differences(curs, tenant_id, table))
                return
            curs.execute("RESET ROLE")
            for table in self._owned:
                report.rows_replaced += replace_rows(curs, tenant_id, table)
            curs.execute(f"SET ROLE {AUDITOR_ROLE}")

    def _catch_up(self, curs: psycopg.Cursor[Any], tenant_id: UUID, since: int, now: int) -> None:
        streams = curs.execute(
            _APPENDED_SINCE, (tenant_id, self._stream_types, since, now)
        ).fetchall()
        aggregates = [
            replay(curs.execute(_STREAM, (tenant_id, stream_id)).fetchall())
            for (stream_id,) in streams
        ]
        self._project(tenant_id, aggregates)


class _Writer:
    """Writes batches on a thread of its own while the caller replays the next ones.

    The database's time on a batch (the writers' statements) overlaps with the Python
    replay of the following rows. One thread, in order, so transactions commit in the
    order the batches were read; `drain` waits until every batch submitted is written
    and raises what a write raised.
    """

    def __init__(self, write: Callable[[UUID, list[Any]], None]) -> None:
        self._write = write
        self._batches: queue.Queue[tuple[UUID, list[Any]] | None] = queue.Queue(maxsize=4)
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="rebuild-writer", daemon=True)

    def __enter__(self) -> _Writer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._batches.put(None)
        self._thread.join()

    def submit(self, tenant_id: UUID, aggregates: list[Any]) -> None:
        self._raise()
        self._batches.put((tenant_id, aggregates))

    def drain(self) -> None:
        self._batches.join()
        self._raise()

    def _raise(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _run(self) -> None:
        while (batch := self._batches.get()) is not None:
            try:
                if self._failure is None and batch[1]:
                    self._write(*batch)
            except BaseException as exc:  # handed to the replaying thread by drain()
                self._failure = exc
            finally:
                self._batches.task_done()
        self._batches.task_done()


@contextmanager
def _second_connection(conn: psycopg.Connection[Any]) -> Iterator[psycopg.Connection[Any]]:
    """Another session of the same login, reading as the auditor."""
    params = conn.info.get_parameters()
    if conn.info.password:
        params["password"] = conn.info.password
    with psycopg.connect(make_conninfo(**params)) as reader:
        set_json_loads(orjson.loads, reader)
        reader.execute(f"SET ROLE {AUDITOR_ROLE}")
        reader.commit()
        yield reader


def rebuild(
    conn: psycopg.Connection[Any],
    models: Sequence[ReadModel],
    *,
    verify: bool,
    tenants: Sequence[TenantHead] | None = None,
    batch: int = DEFAULT_BATCH,
    on_progress: Callable[[int], None] | None = None,
) -> RebuildReport:
    """Run a rebuild (or a verification, which changes nothing live)."""
    return Rebuild(conn, models, verify=verify, batch=batch, on_progress=on_progress).run(tenants)
