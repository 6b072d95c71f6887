"""Activations (`POST /machines`) per second vs raw single-row insert transactions.

    python scripts/bench/activation.py [--seconds 5] [--repeat 3] [--connections 8]
                                       [--licenses 1000] [--json]

Same database, same run, same concurrency, alternating trials (median shown):
- ours: `licentric serve` (api/gunicorn_conf.py, the workers x threads it uses here,
  rate limits off); wrk (a separate process) sends `POST /api/v1/machines` with
  `Authorization: License <key>` and a fingerprint never sent before, over `--licenses`
  licenses of a policy with unlimited seats (so a license holds a few machines, as real
  ones do). Each one: authenticate the key, load the license and its policy, decide,
  append `machine.activated` and project the license and machine rows, one transaction.
- raw: `--connections` processes, each on its own psycopg connection, running
  `BEGIN; INSERT one row like a machine row; COMMIT` in a loop: what one durable
  single-row write costs on this PostgreSQL, with no application at all.

Checks that every activation answered 201 and that the machines table holds exactly as
many machines as 201 answers. Target (issue 9): ours >= 40 % of raw.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import orjson
import psycopg
from psycopg.types.json import Jsonb

from api.app import ledger_application
from api.config import Config
from ledger.accounts import open_account
from ledger.commands import catalogue
from ledger.commands.base import Actor
from ledger.commands.base import CommandContext
from ledger.commands.licenses import issue_license
from ledger.domain.codes import EnvironmentName
from scripts.bench._bulk import new_master_key
from scripts.bench._cpu import CpuMeter
from scripts.bench._db import drop_database
from scripts.bench._db import fresh_database
from scripts.bench._profile import profile_server
from scripts.bench._servers import Shape
from scripts.bench._servers import bench_env
from scripts.bench._servers import exit_cleanly_on_sigterm
from scripts.bench._servers import licentric_server
from scripts.bench._wrk import Request
from scripts.bench._wrk import require_wrk
from scripts.bench._wrk import run_wrk
from scripts.bench._wrk import write_requests

PATH = "/api/v1/machines"
TARGET = 0.40
# Lines per wrk run: far more than a trial can send, so no fingerprint is sent twice.
LINES_PER_SECOND = 4_000


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def issue_licenses(url: str, master_key: str, count: int) -> list[str]:
    """`count` license keys of one policy with unlimited seats, made by the commands."""
    config = Config.from_env({"DATABASE_URL": url, "LICENTRIC_MASTER_KEY": master_key})
    ledger = ledger_application(config)
    try:
        opened = open_account(
            ledger,
            name="bench",
            master_key=config.master_key,
            pepper=config.pepper,
            at=datetime.now(UTC),
        )
        tenant = opened.environments[EnvironmentName.LIVE].tenant_id
        ctx = CommandContext(tenant, Actor("operator"), datetime.now(UTC))
        product = catalogue.create_product(
            ledger, ctx, product_id=uuid4(), name="App", code="bench-app"
        )
        policy = catalogue.create_policy(
            ledger,
            ctx,
            policy_id=uuid4(),
            product_id=product.id,
            name="Unlimited",
            settings={"max_machines": None},
        )
        return [
            issue_license(
                ledger,
                ctx,
                license_id=uuid4(),
                product_id=product.id,
                policy_id=policy.id,
                pepper=config.pepper,
            ).key
            for _ in range(count)
        ]
    finally:
        ledger.close()


def activation_lines(file: Path, keys: list[str], trial: str, count: int) -> None:
    write_requests(
        file,
        (
            Request(
                PATH,
                orjson.dumps({"fingerprint": f"bench-{trial}-{i:09d}", "name": "bench"}),
                f"License {keys[i % len(keys)]}",
            )
            for i in range(count)
        ),
    )


# The raw baseline

_RAW_TABLE = """
CREATE TABLE IF NOT EXISTS bench_raw_rows (
    tenant_id   uuid        NOT NULL,
    id          uuid        NOT NULL,
    license_id  uuid        NOT NULL,
    fingerprint text        NOT NULL,
    created_at  timestamptz NOT NULL,
    doc         jsonb       NOT NULL,
    PRIMARY KEY (tenant_id, id)
)
"""


def _raw_writer(url: str, seconds: float, start: Any, out: Any) -> None:
    tenant, license_id = uuid4(), uuid4()
    count = 0
    with psycopg.connect(url, autocommit=True) as conn:
        start.wait()  # all connected (the CPU meter reads their backends now)
        start.wait()  # go
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            machine = uuid4()
            with conn.transaction():
                conn.execute(
                    "INSERT INTO bench_raw_rows VALUES (%s, %s, %s, %s, now(), %s)",
                    (tenant, machine, license_id, f"raw-{machine}", Jsonb({"id": str(machine)})),
                    prepare=True,
                )
            count += 1
        out.put(count)
        start.wait()  # stay connected until the CPU meter has read the backends


def raw_inserts(url: str, connections: int, seconds: float) -> tuple[float, float]:
    """(transactions/s, PostgreSQL CPU us per transaction) of `connections` writers."""
    start = mp.Barrier(connections + 1)
    out: Any = mp.Queue()
    procs = [
        mp.Process(target=_raw_writer, args=(url, seconds, start, out)) for _ in range(connections)
    ]
    for p in procs:
        p.start()
    start.wait()
    with CpuMeter(os.getpid(), url) as cpu:
        start.wait()
        began = time.perf_counter()
        total = sum(out.get() for _ in procs)
        elapsed = time.perf_counter() - began
    start.wait()
    for p in procs:
        p.join()
    return total / max(elapsed, seconds), 1e6 * cpu.database / max(1, total)


def exactness(created: int, machines: int, in_flight: int) -> str:
    """wrk stops with up to one request per connection in flight; the server still
    completes those, so the table may hold that many machines more than wrk counted."""
    if created <= machines <= created + in_flight:
        return f"consistent: {machines - created} completed after wrk stopped (<= {in_flight})"
    return "INCONSISTENT"


def count_machines(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM machines WHERE active").fetchone()
    assert row is not None
    return int(row[0])


@contextlib.contextmanager
def bench_database() -> Iterator[str]:
    url = fresh_database("licentric_bench_activation")
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(_RAW_TABLE)
        yield url
    finally:
        drop_database(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per trial")
    parser.add_argument("--repeat", type=int, default=3, help="trials; medians are shown")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--licenses", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=Shape().workers)
    parser.add_argument("--threads", type=int, default=Shape().threads)
    parser.add_argument("--profile", type=float, default=0.0, help="py-spy seconds (0: off)")
    parser.add_argument("--profile-out", type=Path, default=None, help="keep the raw profile")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()
    require_wrk()
    exit_cleanly_on_sigterm()
    shape = Shape(args.workers, args.threads)
    master_key = new_master_key()
    load_before = os.getloadavg()
    with bench_database() as url, tempfile.TemporaryDirectory(prefix="bench-act-") as scratch:
        started = time.perf_counter()
        keys = issue_licenses(url, master_key, args.licenses)
        log(f"{len(keys)} licenses issued in {time.perf_counter() - started:.0f} s")
        result = run(args, shape, url, master_key, keys, Path(scratch))
    result["load_average"] = {"before": load_before, "after": os.getloadavg()}
    report(result, args)


def run(
    args: argparse.Namespace,
    shape: Shape,
    url: str,
    master_key: str,
    keys: list[str],
    scratch: Path,
) -> dict[str, Any]:
    lines = scratch / "activations.txt"
    count = int(LINES_PER_SECOND * args.seconds)
    ours: list[dict[str, Any]] = []
    raw: list[tuple[float, float]] = []
    created = 0
    with licentric_server("activation", bench_env(url, master_key, scratch), shape, scratch) as s:
        log("warming up")
        activation_lines(lines, keys, "warm", count)
        warm = run_wrk(
            s.base_url, lines, seconds=2, connections=args.connections, count_status=True
        )
        created += warm.statuses.get("201", 0)
        raw_inserts(url, args.connections, 1.0)
        for trial in range(args.repeat):
            order = ("raw", "ours") if trial % 2 == 0 else ("ours", "raw")
            for kind in order:
                if kind == "raw":
                    rate, db_us = raw_inserts(url, args.connections, args.seconds)
                    raw.append((rate, db_us))
                    log(f"  trial {trial + 1} raw  {rate:8.0f} tx/s   PostgreSQL {db_us:.0f} us/tx")
                    continue
                activation_lines(lines, keys, f"t{trial}", count)
                with CpuMeter(s.process.pid, url) as cpu:
                    r = run_wrk(
                        s.base_url,
                        lines,
                        seconds=args.seconds,
                        connections=args.connections,
                        threads=args.wrk_threads,
                        count_status=True,
                    )
                created += r.statuses.get("201", 0)
                other = {k: v for k, v in r.statuses.items() if k != "201"}
                row = {
                    **r.as_dict(),
                    "cpu_server_us": 1e6 * cpu.server / max(1, r.requests),
                    "cpu_db_us": 1e6 * cpu.database / max(1, r.requests),
                }
                ours.append(row)
                log(
                    f"  trial {trial + 1} ours {r.rps:8.0f} req/s  p50 {r.p50_ms:6.2f} ms"
                    f"  p99 {r.p99_ms:6.2f} ms  cpu/req {row['cpu_server_us']:.0f}"
                    f"+{row['cpu_db_us']:.0f} us"
                    + (f"  other statuses {other}" if other else "")
                    + (f"  ({r.failed} errors)" if r.failed else "")
                    + ("  (fingerprints reused!)" if r.wrapped else "")
                )
        profile = None
        if args.profile > 0:
            log(f"profiling for {args.profile:.0f} s (py-spy)")
            activation_lines(lines, keys, "profile", int(LINES_PER_SECOND * args.profile))
            profile = profile_server(
                s,
                lambda: run_wrk(
                    s.base_url,
                    lines,
                    seconds=args.profile,
                    connections=args.connections,
                    threads=args.wrk_threads,
                    count_status=True,
                ),
                seconds=args.profile,
                out=args.profile_out,
            )
    machines = count_machines(url)
    runs = 1 + args.repeat + (1 if args.profile > 0 else 0)
    ours_rps = statistics.median(row["rps"] for row in ours)
    raw_rate = statistics.median(rate for rate, _ in raw)
    ratio = ours_rps / raw_rate
    p50 = statistics.median(row["p50_ms"] for row in ours)
    p99 = statistics.median(row["p99_ms"] for row in ours)
    server_us = statistics.median(row["cpu_server_us"] for row in ours)
    db_us = statistics.median(row["cpu_db_us"] for row in ours)
    raw_db_us = statistics.median(us for _, us in raw)
    return {
        "benchmark": "activation",
        "shape": shape.describe(),
        "connections": args.connections,
        "licenses": len(keys),
        "ours": {
            "rps": ours_rps,
            "p50_ms": p50,
            "p99_ms": p99,
            "cpu_server_us": server_us,
            "cpu_db_us": db_us,
            "trials": [round(row["rps"]) for row in ours],
            "statuses": [row["statuses"] for row in ours],
        },
        "raw": {
            "tps": raw_rate,
            "cpu_db_us": raw_db_us,
            "trials": [round(rate) for rate, _ in raw],
        },
        "exactness": {
            "created_201": created,
            "active_machines": machines,
            "verdict": exactness(created, machines, args.connections * runs),
        },
        "profile": profile,
        "figures": [
            {
                "id": "activation_ratio",
                "figure": "activation (POST /machines) req/s vs raw insert tx/s",
                "ours": round(ours_rps),
                "baseline": round(raw_rate),
                "unit": "req/s",
                "baseline_unit": "tx/s",
                "ratio": round(ratio, 3),
                "target": f">= {TARGET:.2f}",
                "met": ratio >= TARGET,
                "note": (
                    f"{args.connections} connections; p50/p99 {p50:.1f}/{p99:.1f} ms; "
                    f"CPU/request {server_us:.0f} us server + {db_us:.0f} us PostgreSQL "
                    f"(raw: {raw_db_us:.0f} us PostgreSQL/tx)"
                ),
            }
        ],
    }


def report(result: dict[str, Any], args: argparse.Namespace) -> None:
    if args.json:
        print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
        return
    ours, raw = result["ours"], result["raw"]
    print(f"\nactivation: {result['shape']}, {args.connections} connections,")
    print(f"{result['licenses']} licenses (unlimited seats), median of {args.repeat} trials")
    print(
        f"POST /machines  {ours['rps']:8.0f} req/s  p50 {ours['p50_ms']:.2f} ms"
        f"  p99 {ours['p99_ms']:.2f} ms  trials {ours['trials']}"
    )
    print(
        f"  CPU per activation: {ours['cpu_server_us']:.0f} us server"
        f" + {ours['cpu_db_us']:.0f} us PostgreSQL"
    )
    print(
        f"raw insert tx   {raw['tps']:8.0f} tx/s   trials {raw['trials']}"
        f"  (PostgreSQL {raw['cpu_db_us']:.0f} us/tx)"
    )
    exact = result["exactness"]
    print(
        f"201 answers {exact['created_201']}, active machines {exact['active_machines']}"
        f" ({exact['verdict']})"
    )
    figure = result["figures"][0]
    verdict = "met" if figure["met"] else "MISSED"
    print(f"ratio {figure['ratio']:.2f} (target {figure['target']}: {verdict})")
    load = result["load_average"]
    print(f"load average before/after: {load['before'][0]:.1f} / {load['after'][0]:.1f}")
    if result["profile"]:
        print("\n" + result["profile"]["text"])


if __name__ == "__main__":
    main()
