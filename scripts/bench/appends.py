"""Ledger appends: the library's stock PostgreSQL recorder vs ours, same run, same machine.

Each writer is a separate process appending one event per transaction to its own stream
(the way commands append) for a fixed time. Writers are spread over 8 tenants. The stock
recorder has no tenants: its writers simply use 8 different aggregates, and it takes a
table-wide lock per append. Ours takes a per-tenant head lock instead.

    python scripts/bench/appends.py [--seconds 8] [--writers 1 8]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any
from typing import ClassVar
from uuid import uuid4

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _db import drop_database  # noqa: E402
from _db import fresh_database  # noqa: E402
from eventsourcing.application import Application  # noqa: E402
from eventsourcing.domain import Aggregate  # noqa: E402
from eventsourcing.domain import event  # noqa: E402

from ledger.application import LedgerApplication  # noqa: E402
from ledger.application import postgres_env  # noqa: E402
from ledger.store.mapper import EventNames  # noqa: E402
from ledger.store.tenancy import tenant_scope  # noqa: E402

TENANTS = 8


class Meter(Aggregate):
    stream_type: ClassVar[str] = "meter"

    @event("Created")
    def __init__(self, timestamp: datetime) -> None:
        self.count = 0

    @event("Ticked")
    def tick(self, n: int, timestamp: datetime) -> None:
        self.count += n


EventNames.register(Meter)


def _stock_app(url: str, *, create: bool = False) -> Application[Any]:
    env = {
        k: v
        for k, v in postgres_env(url, pool_size=1).items()
        if k.startswith("POSTGRES_") and k != "POSTGRES_PRE_PING"
    }
    env.update({"PERSISTENCE_MODULE": "eventsourcing.postgres", "CREATE_TABLE": "y" if create else "n"})
    return Application(env=env)


def _writer(kind: str, url: str, tenant_index: int, seconds: float, start: Any, out: Any) -> None:
    now = datetime.now(UTC)
    tenants = [uuid4() for _ in range(TENANTS)]
    tenant = tenants[tenant_index % TENANTS]
    if kind == "stock":
        app: Any = _stock_app(url)
        meter = Meter(timestamp=now)
        app.save(meter)

        def append() -> None:
            meter.tick(n=1, timestamp=now)
            app.save(meter)
    else:
        app = LedgerApplication(url, pool_size=1)
        meter = Meter(timestamp=now)
        app.save_in(tenant, meter)

        def append() -> None:
            meter.tick(n=1, timestamp=now)
            app.save_in(tenant, meter)

    start.wait()
    deadline = time.perf_counter() + seconds
    count = 0
    while time.perf_counter() < deadline:
        append()
        count += 1
    out.put(count)


def measure(kind: str, url: str, writers: int, seconds: float) -> float:
    start = mp.Barrier(writers + 1)
    out: Any = mp.Queue()
    procs = [
        mp.Process(target=_writer, args=(kind, url, i, seconds, start, out))
        for i in range(writers)
    ]
    for p in procs:
        p.start()
    start.wait()
    began = time.perf_counter()
    total = sum(out.get() for _ in procs)
    elapsed = time.perf_counter() - began
    for p in procs:
        p.join()
    return total / max(elapsed, seconds)


def run(seconds: float, writer_counts: list[int]) -> dict[str, float]:
    results: dict[str, float] = {}
    for writers in writer_counts:
        for kind in ("stock", "ours"):
            url = fresh_database(migrated=(kind == "ours"))
            if kind == "stock":
                _stock_app(url, create=True).close()  # creates the library's own table once
            try:
                results[f"{kind}@{writers}"] = measure(kind, url, writers, seconds)
            finally:
                drop_database(url)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--writers", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()
    results = run(args.seconds, args.writers)
    print(f"{'writers':>8} {'stock ev/s':>12} {'ours ev/s':>12} {'ratio':>7}")
    for writers in args.writers:
        stock, ours = results[f"stock@{writers}"], results[f"ours@{writers}"]
        print(f"{writers:>8} {stock:>12.0f} {ours:>12.0f} {ours / stock:>7.2f}")
    top = max(args.writers)
    ratio = results[f"ours@{top}"] / results[f"stock@{top}"]
    print(f"ours@{top} / stock@{top} = {ratio:.2f} (target >= 2.0)")


if __name__ == "__main__":
    main()
