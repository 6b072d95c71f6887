"""Ledger appends: the library's stock PostgreSQL recorder vs ours, same run, same machine.

Each writer is a separate process appending one event per transaction to its own stream
(the way commands append) for a fixed time. Writers are spread over 8 tenants. The stock
recorder has no tenants: its writers simply use 8 different aggregates, and it takes a
table-wide lock per append. Ours takes a per-tenant head lock instead.

Two levels are measured, each with the same harness for both:
- `recorder`: `recorder.insert_events([stored event])`, the thing being compared;
- `app`: `Application.save(aggregate)`, including the library's application machinery,
  which costs the same client CPU on both sides and so dilutes the ratio on 2 cores.

    python scripts/bench/appends.py [--seconds 8] [--writers 1 8] [--level recorder app]
                                    [--repeat 3]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import time
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any
from typing import ClassVar
from uuid import uuid4

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _db import drop_database
from _db import fresh_database
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from eventsourcing.domain import event

from ledger.application import LedgerApplication
from ledger.application import postgres_env
from ledger.store.mapper import EventNames
from ledger.store.tenancy import tenant_scope

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
    env.update(
        {"PERSISTENCE_MODULE": "eventsourcing.postgres", "CREATE_TABLE": "y" if create else "n"}
    )
    return Application(env=env)


def _writer(
    kind: str, level: str, url: str, index: int, seconds: float, start: Any, out: Any
) -> None:
    now = datetime.now(UTC)
    tenant = [uuid4() for _ in range(TENANTS)][index % TENANTS]
    app: Any = _stock_app(url) if kind == "stock" else LedgerApplication(url, pool_size=1)
    meter = Meter(timestamp=now)
    with tenant_scope(tenant):
        app.save(meter)
        if level == "app":

            def append() -> None:
                meter.tick(n=1, timestamp=now)
                app.save(meter)
        else:
            recorder, mapper = app.recorder, app.mapper

            def append() -> None:
                meter.tick(n=1, timestamp=now)
                pending = meter.collect_events()
                recorder.insert_events([mapper.to_stored_event(e) for e in pending])

        start.wait()
        deadline = time.perf_counter() + seconds
        count = 0
        while time.perf_counter() < deadline:
            append()
            count += 1
    out.put(count)


def measure(kind: str, level: str, url: str, writers: int, seconds: float) -> float:
    start = mp.Barrier(writers + 1)
    out: Any = mp.Queue()
    procs = [
        mp.Process(target=_writer, args=(kind, level, url, i, seconds, start, out))
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


def run(
    seconds: float, writer_counts: list[int], levels: list[str], repeat: int
) -> dict[str, float]:
    """Median events/s per (level, kind, writers); stock and ours alternate each trial, so
    slow phases of the machine (commit fsync latency varies a lot here) hit both."""
    samples: dict[str, list[float]] = {}
    for _ in range(repeat):
        for level in levels:
            for writers in writer_counts:
                for kind in ("stock", "ours"):
                    url = fresh_database(migrated=(kind == "ours"))
                    if kind == "stock":
                        _stock_app(url, create=True).close()  # the library's table, once
                    try:
                        rate = measure(kind, level, url, writers, seconds)
                    finally:
                        drop_database(url)
                    samples.setdefault(f"{level}:{kind}@{writers}", []).append(rate)
    return {key: statistics.median(values) for key, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--writers", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--level", nargs="+", default=["recorder", "app"])
    parser.add_argument("--repeat", type=int, default=3, help="trials; the median is shown")
    args = parser.parse_args()
    results = run(args.seconds, args.writers, args.level, args.repeat)
    print(f"{'level':>9} {'writers':>8} {'stock ev/s':>12} {'ours ev/s':>12} {'ratio':>7}")
    for level in args.level:
        for writers in args.writers:
            stock = results[f"{level}:stock@{writers}"]
            ours = results[f"{level}:ours@{writers}"]
            print(f"{level:>9} {writers:>8} {stock:>12.0f} {ours:>12.0f} {ours / stock:>7.2f}")
    top = max(args.writers)
    for level in args.level:
        ratio = results[f"{level}:ours@{top}"] / results[f"{level}:stock@{top}"]
        print(f"{level}: ours@{top} / stock@{top} = {ratio:.2f} (target >= 2.0)")


if __name__ == "__main__":
    main()
