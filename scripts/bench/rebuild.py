"""Rebuild throughput vs a raw read of the same rows, and `asOf` vs a live read.

1. Generates a ledger of at least `--events` events (default 1,000,000) over the live and
   test environments of `--accounts` accounts: licenses of `--license-events` events
   each (default 100: metered use, two machines at a time, heartbeats, suspensions),
   appended in large batches through the recorder (one `save_in` of many licenses, about
   5,000 events, per append). The read models are then written by a first rebuild.
2. Times, in the same run and over the same rows:
   - a raw read: the rows a rebuild reads, with the same query (stream order, batches,
     the same JSON decoder), doing nothing with them;
   - `projections rebuild --verify` (replay, writers into shadow tables, comparison)
     and a plain rebuild (replay, writers, replacing what differs), one process;
   - `projections rebuild --verify --jobs N` (environments shared out over N processes).
3. Builds one license of `--as-of-events` events (default 10,000; snapshots every 100),
   then times `GET /licenses/{id}` as a live read (the read model) against the same
   document `asOf` the newest moment (the worst case: the whole stream is scanned for
   the version) and `asOf` the middle of its history.

    python scripts/bench/rebuild.py [--events 1000000] [--accounts 2] [--as-of-events 10000]
                                    [--license-events 100] [--jobs 2] [--keep]
"""

from __future__ import annotations

import argparse
import multiprocessing
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID
from uuid import uuid4

sys.path.insert(0, str(Path(__file__).resolve().parent))

import orjson
import psycopg
from _db import drop_database
from _db import fresh_database
from psycopg.types.json import set_json_loads

from ledger.accounts import open_account
from ledger.application import LedgerApplication
from ledger.audit.auditor import AUDITOR_ROLE
from ledger.audit.auditor import auditor_role
from ledger.audit.auditor import list_tenants
from ledger.commands import catalogue
from ledger.commands.base import Actor
from ledger.commands.base import CommandContext
from ledger.domain.license import License
from projections.as_of import license_as_of
from projections.queries import get_license
from projections.read_models import select
from projections.rebuild import DEFAULT_BATCH
from projections.rebuild import TENANT_ROWS
from projections.rebuild import rebuild
from projections.rebuild_jobs import rebuild_in_parallel

T0 = datetime(2030, 1, 1, tzinfo=UTC)
APPEND = 5000  # events per append
MASTER_KEY = secrets.token_bytes(32)
PEPPER = secrets.token_bytes(32)


_MACHINES: dict[UUID, list[UUID]] = {}  # each license's active machines, oldest first


def _license_events(license_: License, count: int, start: datetime) -> None:
    """Grow `license_` by `count` events, one second apart: a license's ordinary life.

    Mostly metered use; two machines at a time, each heartbeating, one of them replaced
    every 25 events; a suspension and a reinstatement every 10.
    """
    at = start
    machines = _MACHINES.setdefault(license_.id, [])
    for _ in range(count):
        at += timedelta(seconds=1)
        step = license_.version % 25
        if step in {1, 3} and len(machines) < 2:
            machines.append(uuid4())
            fingerprint = f"fp-{license_.version:08d}"
            license_.activate_machine(
                machine_id=machines[-1],
                fingerprint=fingerprint,
                max_machines=2,
                allow_transfer=True,
                at=at,
            )
        elif step in {2, 4} and machines and _first_ping(license_, machines[-1]):
            license_.record_heartbeat(machine_id=machines[-1], at=at)
        elif step == 20 and machines:
            license_.deactivate_machine(machine_id=machines.pop(0), at=at)
        elif step % 10 == 5 and license_.stored_status == "active":
            license_.suspend(at=at)
        elif step % 10 == 6 and license_.stored_status == "suspended":
            license_.reinstate(at=at)
        else:
            license_.increment_usage(increment=1, max_uses=None, at=at)


def _first_ping(license_: License, machine_id: UUID) -> bool:
    # Only a machine's first ping is an event (an ALIVE machine's pings are not).
    return license_.machine(machine_id).heartbeat_status == "NOT_STARTED"


def _new_license(product_id: UUID, policy_id: UUID, at: datetime) -> License:
    return License.create(
        id=uuid4(),
        product_id=product_id,
        policy_id=policy_id,
        key_hash=secrets.token_hex(32),
        name="bench",
        at=at,
    )


def _fill_tenant(url: str, tenant: UUID, events: int, per_license: int) -> int:
    """One tenant's licenses, about 5,000 events per append. Bulk
    licenses are not snapshotted: snapshots are a cache, and a rebuild never reads them."""
    app = LedgerApplication(url, pool_size=1, extra_env={"IS_SNAPSHOTTING_ENABLED": "n"})
    try:
        ctx = CommandContext(tenant, Actor("system"), T0)
        product = catalogue.create_product(
            app, ctx, product_id=uuid4(), name="P", code="p-" + secrets.token_hex(4)
        )
        policy = catalogue.create_policy(
            app, ctx, policy_id=uuid4(), product_id=product.id, name="Pol"
        )
        done = 0
        while done < events:
            count = max(1, APPEND // per_license)
            batch = [_new_license(product.id, policy.id, T0) for _ in range(count)]
            for license_ in batch:
                _license_events(license_, per_license - 1, T0)
            app.save_in(tenant, *batch, metadata={"actor": {"type": "system", "id": "bench"}})
            done += sum(license_.version for license_ in batch)
        return done
    except Exception as exc:
        # Domain errors do not unpickle in the parent (which would then wait forever).
        raise RuntimeError(repr(exc)) from None
    finally:
        app.close()


def generate(
    app: LedgerApplication, url: str, accounts: int, events: int, per_license: int
) -> list[UUID]:
    """Accounts opened here; their environments filled by one process each (2 at a time)."""
    tenants: list[UUID] = []
    for _ in range(accounts):
        opened = open_account(
            app, name="bench", master_key=MASTER_KEY, pepper=PEPPER, at=T0, new_id=uuid4
        )
        tenants += [env.tenant_id for env in opened.environments.values()]
    per_tenant = events // len(tenants)
    started, appended = time.perf_counter(), 0
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        jobs = [(url, tenant, per_tenant, per_license) for tenant in tenants]
        for done in pool.starmap(_fill_tenant, jobs, chunksize=1):
            appended += done
            rate = appended / (time.perf_counter() - started)
            print(f"  generated {appended:,} events ({rate:,.0f}/s)", file=sys.stderr)
    return tenants


def raw_read(url: str, stream_types: list[str]) -> tuple[int, float]:
    """Read exactly the rows a rebuild reads, the same way (the same query through a
    server-side cursor, batches of the same size, the same JSON decoder), and drop them."""
    with psycopg.connect(url) as conn:
        set_json_loads(orjson.loads, conn)
        conn.execute(f"SET ROLE {AUDITOR_ROLE}")
        heads = list_tenants(conn)
        started, rows_read = time.perf_counter(), 0
        for head in heads:
            with conn.transaction(), conn.cursor(name="raw_rows") as curs:
                curs.itersize = DEFAULT_BATCH
                curs.execute(TENANT_ROWS, (head.tenant_id, stream_types, head.position))
                while rows := curs.fetchmany(DEFAULT_BATCH):
                    rows_read += len(rows)
        return rows_read, time.perf_counter() - started


def timed_rebuild(url: str, *, verify: bool, jobs: int = 1) -> tuple[int, float, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        with auditor_role(conn):
            heads = list_tenants(conn)
        started = time.perf_counter()
        if jobs == 1:
            report = rebuild(conn, select(), verify=verify, tenants=heads)
        else:
            names = [m.name for m in select()]
            report = rebuild_in_parallel(url, names, verify=verify, tenants=heads, jobs=jobs)
        elapsed = time.perf_counter() - started
    changed = len(report.differences) if verify else report.rows_replaced
    return report.events, elapsed, changed


def long_license(app: LedgerApplication, tenant: UUID, events: int) -> tuple[UUID, datetime]:
    ctx = CommandContext(tenant, Actor("system"), T0)
    product = catalogue.create_product(
        app, ctx, product_id=uuid4(), name="P", code="long-" + secrets.token_hex(4)
    )
    policy = catalogue.create_policy(app, ctx, policy_id=uuid4(), product_id=product.id, name="L")
    license_ = _new_license(product.id, policy.id, T0)
    at = T0
    # 100 events per save: the library snapshots a license every 100 events on save.
    while license_.version < events:
        _license_events(license_, min(100, events - license_.version), at)
        at = license_.modified_on
        app.save_in(tenant, license_)
    return license_.id, license_.modified_on


def _mean_ms(fn: Callable[[], Any], repeat: int) -> float:
    fn()  # warm: prepared statements, caches
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.mean(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=2)
    parser.add_argument("--license-events", type=int, default=100, help="Events per license.")
    parser.add_argument("--as-of-events", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2, help="Processes of the parallel run.")
    parser.add_argument("--keep", action="store_true", help="Keep the database afterwards.")
    args = parser.parse_args()

    url = fresh_database("licentric_bench_rebuild")
    # No inline projector while generating: appends are then single statements, and the
    # read models are written by the first rebuild (which is timed too).
    app = LedgerApplication(url, pool_size=2)
    try:
        print(f"database: {url}", file=sys.stderr)
        started = time.perf_counter()
        tenants = generate(app, url, args.accounts, args.events, args.license_events)
        license_id, newest = long_license(app, tenants[0], args.as_of_events)
        print(f"generation: {time.perf_counter() - started:.1f} s", file=sys.stderr)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")

        stream_types = sorted({m.stream_type for m in select()})
        raw_read(url, stream_types)  # warm the cache: every run below reads warm pages
        events, seconds, replaced = timed_rebuild(url, verify=False)
        print(
            f"first rebuild:      {events:,} events in {seconds:.2f} s = {events / seconds:,.0f}/s"
            f" (into empty read models: {replaced:,} rows written)"
        )
        runs: dict[str, list[tuple[int, float, int]]] = {
            "raw": [],
            "verify": [],
            "rebuild": [],
            "verify2": [],
        }
        for _ in range(2):
            rows, raw_seconds = raw_read(url, stream_types)
            runs["raw"].append((rows, raw_seconds, 0))
            runs["verify"].append(timed_rebuild(url, verify=True))
            runs["rebuild"].append(timed_rebuild(url, verify=False))
            runs["verify2"].append(timed_rebuild(url, verify=True, jobs=args.jobs))
        best = {name: max(found, key=lambda r: r[0] / r[1]) for name, found in runs.items()}
        raw_rows, raw_seconds, _ = best["raw"]
        raw_rate = raw_rows / raw_seconds
        print(f"raw read:           {raw_rows:,} rows in {raw_seconds:.2f} s = {raw_rate:,.0f}/s")
        for label, name, what in (
            ("rebuild --verify:", "verify", "differences"),
            ("rebuild:", "rebuild", "rows replaced"),
            (f"... --jobs {args.jobs}:", "verify2", "differences"),
        ):
            count, seconds, changed = best[name]
            rate = count / seconds
            print(
                f"{label:19} {count:,} events in {seconds:.2f} s = {rate:,.0f}/s"
                f" ({rate / raw_rate:.0%} of the raw read; {changed} {what})"
            )
        print("(best of 2 runs each, alternating, warm cache)")

        middle = T0 + (newest - T0) / 2

        def live() -> None:
            with app.reading(tenants[0]) as curs:
                assert get_license(curs, license_id, newest) is not None

        live_ms = _mean_ms(live, args.repeat)
        newest_ms = _mean_ms(
            lambda: license_as_of(app, tenants[0], license_id, newest), args.repeat
        )
        middle_ms = _mean_ms(
            lambda: license_as_of(app, tenants[0], license_id, middle), args.repeat
        )
        with app.reading(tenants[0]) as curs:
            assert license_as_of(app, tenants[0], license_id, newest) == get_license(
                curs, license_id, newest
            )
        print(f"license of {args.as_of_events:,} events (mean of {args.repeat}):")
        print(f"  live read:        {live_ms:.2f} ms")
        print(f"  asOf newest:      {newest_ms:.2f} ms ({newest_ms / live_ms:.1f}x the live read)")
        print(f"  asOf middle:      {middle_ms:.2f} ms ({middle_ms / live_ms:.1f}x the live read)")
    finally:
        app.close()
        if not args.keep:
            drop_database(url)


if __name__ == "__main__":
    main()
