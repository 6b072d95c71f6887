"""validate-key vs a bare Falcon endpoint, and validate-key at 1,000,000 vs 10,000 licenses.

    python scripts/bench/validate.py [--seconds 5] [--repeat 3] [--connections 16]
        [--small 10000] [--large 1000000] [--sample 10000] [--warm-passes 3]
        [--profile 10] [--json]

Four servers run side by side, all gunicorn with api/gunicorn_conf.py and the same
workers x threads (what `licentric serve` uses on this machine):
- `licentric serve` on a database of `--small` licenses, and another on `--large`;
- the bare app (scripts/bench/bare_app.py): no middleware, no database, a constant JSON
  body of the size of a real validate-key answer;
- `licentric serve` on the small database with the facts cache off
  (LICENTRIC_FACTS_CACHE_SIZE=0): every validation reads PostgreSQL.
Before the trials each cached server receives every sampled key `--warm-passes` times
(steady state of a fleet that validates repeatedly; the uncached server is the other
extreme, printed beside it).
wrk (a separate process; scripts/bench/wrk_requests.lua) sends `POST
/api/v1/licenses/validate-key {"key", "fingerprint"}` for `--sample` licenses drawn at
random from the whole table, each with the fingerprint of its active machine (answer:
VALID, machine populated). Trials alternate between the servers (the order rotates
each round) and the median of `--repeat` trials is shown, so slow phases of a shared
machine hit all of them. Then one connection at a time, for latency without queueing.

Licenses: one is made by the commands; the rest are cloned into the read models with
COPY as the database owner (scripts/bench/_bulk.py). They have no events, which is fine
for this benchmark: validation reads only the read models. Rate limits are off.

`--profile N` records the workers of the small server with py-spy for N seconds under
the same load and prints where the time goes.

Targets (issues 4 and 9): validate-key >= 70 % of the bare endpoint's req/s, and its
p50 at 1,000,000 licenses <= 1.2 x its p50 at 10,000 (measured one connection at a
time: under saturation p50 is queueing, i.e. throughput again; the loaded p50s and the
CPU per request at both sizes are printed too).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import orjson
import requests

from scripts.bench._bulk import KeyedLicense
from scripts.bench._bulk import clone_licenses
from scripts.bench._bulk import new_master_key
from scripts.bench._bulk import open_bench_account
from scripts.bench._cpu import CpuMeter
from scripts.bench._cpu import CpuSpent
from scripts.bench._db import drop_database
from scripts.bench._db import fresh_database
from scripts.bench._profile import profile_server
from scripts.bench._servers import Server
from scripts.bench._servers import Shape
from scripts.bench._servers import bare_server
from scripts.bench._servers import bench_env
from scripts.bench._servers import exit_cleanly_on_sigterm
from scripts.bench._servers import licentric_server
from scripts.bench._wrk import Request
from scripts.bench._wrk import WrkResult
from scripts.bench._wrk import require_wrk
from scripts.bench._wrk import run_wrk
from scripts.bench._wrk import write_requests

PATH = "/api/v1/licenses/validate-key"
RATIO_TARGET = 0.70
UNCACHED = "validate@{}-uncached"
SCALE_TARGET = 1.2


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Database:
    label: str
    url: str
    licenses: int
    sample: list[KeyedLicense]


def prepare(label: str, licenses: int, sample: int, master_key: str) -> Database:
    started = time.perf_counter()
    url = fresh_database("licentric_bench_validate")
    account = open_bench_account(url, master_key)
    keyed = clone_licenses(url, account, master_key, licenses - 1, sample=sample, log=log)
    log(f"{label}: {licenses:,} licenses ready in {time.perf_counter() - started:.0f} s")
    return Database(label, url, licenses, keyed)


def request_lines(directory: Path, database: Database) -> Path:
    file = directory / f"validate-{database.label}.txt"
    write_requests(
        file,
        (
            Request(PATH, orjson.dumps({"key": k.key, "fingerprint": k.fingerprint}))
            for k in database.sample
        ),
    )
    return file


def check_answers(server: Server, database: Database, checks: int = 20) -> int:
    """Some sample keys answer VALID with their machine; the body size of an answer."""
    size = 0
    for keyed in database.sample[:checks]:
        body = {"key": keyed.key, "fingerprint": keyed.fingerprint}
        answer = requests.post(server.base_url + PATH, json=body, timeout=10)
        data = answer.json()["data"]
        ok = answer.status_code == 200 and data["code"] == "VALID"
        if not ok or data["machine"]["fingerprint"] != keyed.fingerprint:
            msg = f"{database.label}: unexpected answer {answer.status_code} {answer.text}"
            raise RuntimeError(msg)
        size = len(answer.content)
    return size


@dataclass(frozen=True)
class Target:
    server: Server
    lines: Path
    database_url: str | None  # whose backends' CPU counts for this server


@dataclass(frozen=True)
class Trial:
    wrk: WrkResult
    cpu: CpuSpent

    def cpu_us(self, part: float) -> float:
        return 1e6 * part / max(1, self.wrk.requests)


def median_result(trials: list[Trial]) -> dict[str, Any]:
    return {
        "rps": statistics.median(t.wrk.rps for t in trials),
        "p50_ms": statistics.median(t.wrk.p50_ms for t in trials),
        "p99_ms": statistics.median(t.wrk.p99_ms for t in trials),
        # CPU per request: much less sensitive than req/s to what else the machine runs.
        "cpu_server_us": statistics.median(t.cpu_us(t.cpu.server) for t in trials),
        "cpu_db_us": statistics.median(t.cpu_us(t.cpu.database) for t in trials),
        "requests": sum(t.wrk.requests for t in trials),
        "failed": sum(t.wrk.failed for t in trials),
        "trials": [round(t.wrk.rps) for t in trials],
    }


def alternate(
    targets: dict[str, Target],
    *,
    repeat: int,
    seconds: float,
    connections: int,
    wrk_threads: int,
) -> dict[str, dict[str, Any]]:
    names = list(targets)
    samples: dict[str, list[Trial]] = {name: [] for name in names}
    for trial in range(repeat):
        shift = trial % len(names)
        for name in names[shift:] + names[:shift]:
            target = targets[name]
            with CpuMeter(target.server.process.pid, target.database_url) as cpu:
                result = run_wrk(
                    target.server.base_url,
                    target.lines,
                    seconds=seconds,
                    connections=connections,
                    threads=wrk_threads,
                )
            done = Trial(result, cpu)
            samples[name].append(done)
            log(
                f"  trial {trial + 1} c={connections} {name:<14} {result.rps:8.0f} req/s"
                f"  p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms"
                f"  cpu/req {done.cpu_us(cpu.server):5.0f}+{done.cpu_us(cpu.database):.0f} us"
                + (f"  ({result.failed} errors)" if result.failed else "")
            )
    return {name: median_result(results) for name, results in samples.items()}


def warm_up_caches(
    targets: dict[str, Target], warm: dict[str, dict[str, Any]], args: argparse.Namespace
) -> None:
    """Send every sampled key `--warm-passes` times to each cached server, so the trials
    measure the steady state of a fleet that validates repeatedly (each gunicorn worker
    keeps its own cache; wrk walks the sample in order, so a short trial alone would
    mostly measure first reads). The uncached server shows the other extreme."""
    for name, target in targets.items():
        if not name.startswith("validate@") or name.endswith("-uncached"):
            continue
        seconds = args.warm_passes * args.sample / max(warm[name]["rps"], 100.0)
        log(f"  warming {name}: {args.warm_passes} passes over the sample, {seconds:.0f} s")
        run_wrk(
            target.server.base_url,
            target.lines,
            seconds=min(seconds, 120.0),
            connections=args.connections,
            threads=args.wrk_threads,
        )


def figures(
    loaded: dict[str, dict[str, Any]], single: dict[str, dict[str, Any]], small: str, large: str
) -> list[dict[str, Any]]:
    ours, bare = loaded[f"validate@{small}"], loaded["bare"]
    ratio = ours["rps"] / bare["rps"]
    # Latency of one request at each size, measured one connection at a time: under
    # saturation p50 is mostly queueing (about connections / throughput), which the
    # first figure already measures and which other work on the machine moves a lot.
    one_small, one_large = single[f"validate@{small}"], single[f"validate@{large}"]
    scale = one_large["p50_ms"] / one_small["p50_ms"]
    at_large = loaded[f"validate@{large}"]
    cpu_small = ours["cpu_server_us"] + ours["cpu_db_us"]
    cpu_large = at_large["cpu_server_us"] + at_large["cpu_db_us"]
    cold = loaded[UNCACHED.format(small)]
    return [
        {
            "id": "validate_ratio",
            "figure": "validate-key req/s vs bare Falcon",
            "ours": round(ours["rps"]),
            "baseline": round(bare["rps"]),
            "unit": "req/s",
            "ratio": round(ratio, 3),
            "target": f">= {RATIO_TARGET:.2f}",
            "met": ratio >= RATIO_TARGET,
            "note": (
                f"validate-key at {small} licenses; p50/p99 {ours['p50_ms']:.1f}/"
                f"{ours['p99_ms']:.1f} ms vs {bare['p50_ms']:.1f}/{bare['p99_ms']:.1f} ms; "
                f"CPU per request {ours['cpu_server_us']:.0f} us server + "
                f"{ours['cpu_db_us']:.0f} us PostgreSQL vs {bare['cpu_server_us']:.0f} us; "
                f"facts cache off: {cold['rps']:.0f} req/s = "
                f"{cold['rps'] / bare['rps']:.2f}, CPU {cold['cpu_server_us']:.0f} + "
                f"{cold['cpu_db_us']:.0f} us"
            ),
        },
        {
            "id": "validate_scale",
            "figure": f"validate-key p50 at {large} vs {small} licenses",
            "ours": round(one_large["p50_ms"], 2),
            "baseline": round(one_small["p50_ms"], 2),
            "unit": "ms",
            "ratio": round(scale, 3),
            "target": f"<= {SCALE_TARGET:.1f}",
            "met": scale <= SCALE_TARGET,
            "note": (
                f"one connection (no queueing); under load (c=connections) p50 "
                f"{at_large['p50_ms']:.1f} vs {ours['p50_ms']:.1f} ms, "
                f"{at_large['rps']:.0f} vs {ours['rps']:.0f} req/s; CPU per request "
                f"{cpu_large:.0f} vs {cpu_small:.0f} us"
            ),
        },
    ]


def short(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per trial")
    parser.add_argument("--repeat", type=int, default=3, help="trials; medians are shown")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--small", type=int, default=10_000, help="licenses")
    parser.add_argument("--large", type=int, default=1_000_000, help="licenses")
    parser.add_argument("--sample", type=int, default=10_000, help="keys wrk sends")
    parser.add_argument(
        "--warm-passes", type=int, default=3, help="times each key is sent before the trials"
    )
    parser.add_argument("--workers", type=int, default=Shape().workers)
    parser.add_argument("--threads", type=int, default=Shape().threads)
    parser.add_argument("--profile", type=float, default=0.0, help="py-spy seconds (0: off)")
    parser.add_argument("--profile-out", type=Path, default=None, help="keep the raw profile")
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()
    if short(args.large) == short(args.small):
        parser.error("--large must differ from --small (in thousands)")
    require_wrk()
    exit_cleanly_on_sigterm()

    shape = Shape(args.workers, args.threads)
    small, large = short(args.small), short(args.large)
    master_key = new_master_key()
    load_before = os.getloadavg()
    databases: list[Database] = []
    try:
        databases.append(prepare(small, args.small, args.sample, master_key))
        databases.append(prepare(large, args.large, args.sample, master_key))
        with tempfile.TemporaryDirectory(prefix="bench-validate-") as scratch:
            result = run(args, shape, databases, Path(scratch), master_key)
    finally:
        if not args.keep:
            for database in databases:
                drop_database(database.url)
    result["load_average"] = {"before": load_before, "after": os.getloadavg()}
    report(result, args, shape, small, large)


def run(
    args: argparse.Namespace,
    shape: Shape,
    databases: list[Database],
    scratch: Path,
    master_key: str,
) -> dict[str, Any]:
    small_db, large_db = databases
    with contextlib.ExitStack() as stack:
        servers = {
            db.label: stack.enter_context(
                licentric_server(
                    f"validate-{db.label}", bench_env(db.url, master_key, scratch), shape, scratch
                )
            )
            for db in databases
        }
        body_bytes = check_answers(servers[small_db.label], small_db)
        check_answers(servers[large_db.label], large_db)
        bare = stack.enter_context(
            bare_server(bench_env(small_db.url, master_key, scratch), shape, scratch, body_bytes)
        )
        bare_size = len(requests.post(bare.base_url + PATH, json={}, timeout=5).content)
        # The same server with the facts cache off: every validation reads PostgreSQL.
        uncached = stack.enter_context(
            licentric_server(
                "validate-uncached",
                bench_env(small_db.url, master_key, scratch, LICENTRIC_FACTS_CACHE_SIZE="0"),
                shape,
                scratch,
            )
        )
        targets = {
            "bare": Target(bare, request_lines(scratch, small_db), None),
            **{
                f"validate@{db.label}": Target(
                    servers[db.label], request_lines(scratch, db), db.url
                )
                for db in databases
            },
            UNCACHED.format(small_db.label): Target(
                uncached, request_lines(scratch, small_db), small_db.url
            ),
        }
        log("warming up (pools, prepared statements, caches)")
        warm = alternate(targets, repeat=1, seconds=2, connections=args.connections, wrk_threads=2)
        warm_up_caches(targets, warm, args)
        log(f"load: wrk -t{args.wrk_threads} -c{args.connections}, {args.seconds:.0f} s trials")
        loaded = alternate(
            targets,
            repeat=args.repeat,
            seconds=args.seconds,
            connections=args.connections,
            wrk_threads=args.wrk_threads,
        )
        log("one connection (latency without queueing)")
        single = alternate(
            {k: v for k, v in targets.items() if k.startswith("validate@")},
            repeat=args.repeat,
            seconds=max(2.0, args.seconds / 2),
            connections=1,
            wrk_threads=1,
        )
        profile = None
        if args.profile > 0:
            log(f"profiling validate@{small_db.label} for {args.profile:.0f} s (py-spy)")
            target = targets[f"validate@{small_db.label}"]
            profile = profile_server(
                target.server,
                lambda: run_wrk(
                    target.server.base_url,
                    target.lines,
                    seconds=args.profile,
                    connections=args.connections,
                    threads=args.wrk_threads,
                ),
                seconds=args.profile,
                out=args.profile_out,
            )
    return {
        "benchmark": "validate",
        "shape": shape.describe(),
        "wrk": f"wrk -t{args.wrk_threads} -c{args.connections} -d{args.seconds:.0f}s",
        "body_bytes": {"validate": body_bytes, "bare": bare_size},
        "licenses": {db.label: db.licenses for db in databases},
        "loaded": loaded,
        "single_connection": single,
        "figures": figures(loaded, single, small_db.label, large_db.label),
        "profile": profile,
        "note": (
            "licenses: 1 made by the commands, the rest cloned into the read models with "
            "COPY as the database owner (no events): legitimate for this read-path benchmark"
        ),
    }


def report(
    result: dict[str, Any], args: argparse.Namespace, shape: Shape, small: str, large: str
) -> None:
    if args.json:
        print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
        return
    print(f"\nvalidate-key vs bare Falcon: {shape.describe()}, {result['wrk']},")
    print(f"median of {args.repeat} alternating trials; rate limits off")
    print(f"response bodies: {result['body_bytes']}")
    print(f"note: {result['note']}\n")
    header = f"{'server':<16} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/req':>18}"
    for title, rows in (("", result["loaded"]), ("\none connection:", result["single_connection"])):
        if title:
            print(title)
        print(header + "   trials req/s")
        for name, row in rows.items():
            cpu = f"{row['cpu_server_us']:.0f} + {row['cpu_db_us']:.0f} db"
            print(
                f"{name:<16} {row['rps']:>8.0f} {row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f}"
                f" {cpu:>18}   {row['trials']}"
            )
    print()
    for figure in result["figures"]:
        verdict = "met" if figure["met"] else "MISSED"
        print(
            f"{figure['figure']}: {figure['ours']} / {figure['baseline']} {figure['unit']}"
            f" = {figure['ratio']:.2f} (target {figure['target']}: {verdict})"
        )
        print(f"  ({figure['note']})")
    load = result["load_average"]
    print(f"load average before/after: {load['before'][0]:.1f} / {load['after'][0]:.1f}")
    if result["profile"]:
        print("\n" + result["profile"]["text"])


if __name__ == "__main__":
    main()
