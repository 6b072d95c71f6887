"""Every benchmark of the project in one go: one table of figures, written to docs/benchmarks.md.

    python scripts/bench/run_all.py [--only validate activation ...] [--no-write]

Each benchmark is its own script, run here as a subprocess on fresh databases it creates,
with parameters small enough for the whole run to finish in under 15 minutes on a 2-core
machine and large enough to mean something (see BENCHMARKS below). Every figure is a
ratio against a baseline measured in the same run. The table — figure, ours, baseline,
ratio, target, met? — is printed and written between the markers of a generated section
of docs/benchmarks.md (the prose around it is kept), with the machine description and
the exact command. Logs of each script go to a temporary directory named at the end.

Scripts that have a `--json` flag are read from it; the others' printed lines are
parsed. A script that is missing, fails or prints nothing recognisable gives a row
saying so. HTTP benchmarks need wrk (`apt-get install -y wrk`); they are not part of CI.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import orjson
import psycopg

from scripts.bench._db import drop_tagged_databases
from scripts.bench._db import server_url
from scripts.bench._wrk import MISSING as WRK_MISSING

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "scripts" / "bench"
DOC = REPO / "docs" / "benchmarks.md"
BEGIN = "<!-- run_all: generated section, do not edit by hand -->"
END = "<!-- run_all: end -->"
DB_TAG = "ra" + os.urandom(3).hex()  # names this run's databases (scripts/bench/_db.py)


@dataclass
class Row:
    figure: str
    ours: str = "—"
    baseline: str = "—"
    ratio: str = "—"
    target: str = "—"
    met: str = "—"
    note: str = ""


@dataclass(frozen=True)
class Benchmark:
    name: str
    script: str
    args: list[str]
    figures: list[str]  # the issue-9 figures it gives, for "not available" rows
    read: Callable[[str], list[Row]]
    timeout: float = 180.0  # seconds; a hung benchmark must not hang the run
    needs_wrk: bool = False


@dataclass
class Outcome:
    benchmark: Benchmark
    rows: list[Row] = field(default_factory=list)
    seconds: float = 0.0
    log: Path | None = None


def _num(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def _met(flag: bool) -> str:
    return "yes" if flag else "**no**"


# Readers: one per script, from its --json document or its printed lines.


def _from_json_figures(output: str) -> list[Row]:
    document = orjson.loads(output[output.index("{") :])
    rows = []
    for f in document["figures"]:
        unit = f" {f['unit']}" if f.get("unit") else ""
        base_unit = f" {f['baseline_unit']}" if f.get("baseline_unit") else unit
        digits = 2 if unit == " ms" else 0
        rows.append(
            Row(
                figure=f["figure"],
                ours=f"{_num(f['ours'], digits)}{unit}",
                baseline=f"{_num(f['baseline'], digits)}{base_unit}",
                ratio=f"{f['ratio']:.2f}",
                target=f["target"],
                met=_met(f["met"]),
                note=f.get("note", ""),
            )
        )
    return rows


def _appends(output: str) -> list[Row]:
    # "recorder        8         1369         2974    2.17" (level, writers, stock, ours, ratio)
    match = re.search(r"^\s*recorder\s+8\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$", output, re.M)
    if match is None:
        return []
    stock, ours, ratio = (float(g) for g in match.groups())
    return [
        Row(
            figure="ledger appends, ours vs stock recorder, 8 writers on 8 tenants",
            ours=f"{_num(ours)} ev/s",
            baseline=f"{_num(stock)} ev/s",
            ratio=f"{ratio:.2f}",
            target=">= 2.0",
            met=_met(ratio >= 2.0),
            note="recorder level, one event per transaction",
        )
    ]


def _rebuild(output: str) -> list[Row]:
    raw = re.search(r"^raw read:\s+([\d,]+) rows in ([\d.]+) s = ([\d,]+)/s", output, re.M)
    plain = re.search(r"^rebuild:\s+([\d,]+) events in ([\d.]+) s = ([\d,]+)/s", output, re.M)
    if raw is None or plain is None:
        return []
    raw_rate = float(raw[3].replace(",", ""))
    rate = float(plain[3].replace(",", ""))
    ratio = rate / raw_rate
    verify = re.search(r"^rebuild --verify:.*= ([\d,]+)/s", output, re.M)
    return [
        Row(
            figure="projection rebuild events/s vs raw read of the same rows",
            ours=f"{_num(rate)} ev/s",
            baseline=f"{_num(raw_rate)} rows/s",
            ratio=f"{ratio:.2f}",
            target=">= 0.30",
            met=_met(ratio >= 0.30),
            note=f"{plain[1]} events" + (f"; --verify {verify[1]} ev/s" if verify else ""),
        )
    ]


def _webhooks(output: str) -> list[Row]:
    latency = re.search(
        r"latency at ([\d.]+) events/s .*?: p50 (\d+) ms, p99 (\d+) ms, max (\d+) ms", output
    )
    rates = re.findall(r"throughput, (\d+) worker\(s\): .*= ([\d,]+) deliveries/s", output)
    if latency is None:
        return []
    p99 = float(latency[3])
    throughput = "; ".join(f"{n} worker(s) {r} deliveries/s" for n, r in rates)
    return [
        Row(
            figure=f"webhook event -> delivery p99 at {float(latency[1]):.0f} events/s",
            ours=f"{_num(p99)} ms",
            baseline="1,000 ms (budget)",
            ratio=f"{p99 / 1000:.2f}",
            target="p99 < 1 s",
            met=_met(p99 < 1000),
            note=f"p50 {latency[2]} ms; {throughput}",
        )
    ]


def _checkout(output: str) -> list[Row]:
    validate = re.search(r"^validate-key\s+([\d.]+) req/s", output, re.M)
    checkout = re.search(r"^checkout\s+([\d.]+) req/s", output, re.M)
    paired = re.search(r"^per-trial ratio, req/s: median\s+([\d.]+)%", output, re.M)
    if validate is None or checkout is None or paired is None:
        return []
    # The median of each trial's own ratio (checkout.py's docstring says why).
    ratio = float(paired[1]) / 100
    return [
        Row(
            figure="offline checkout req/s vs validate-key req/s",
            ours=f"{_num(float(checkout[1]))} req/s",
            baseline=f"{_num(float(validate[1]))} req/s",
            ratio=f"{ratio:.2f}",
            target=">= 0.25",
            met=_met(ratio >= 0.25),
            note="same server; median of paired trials",
        )
    ]


BENCHMARKS = [
    Benchmark(
        "validate",
        "validate.py",
        ["--seconds", "5", "--repeat", "3", "--sample", "10000", "--json"],
        [
            "validate-key req/s vs bare Falcon",
            "validate-key p50 at 1M vs 10k licenses",
        ],
        _from_json_figures,
        timeout=480,
        needs_wrk=True,
    ),
    Benchmark(
        "activation",
        "activation.py",
        ["--seconds", "5", "--repeat", "3", "--licenses", "500", "--json"],
        ["activation (POST /machines) req/s vs raw insert tx/s"],
        _from_json_figures,
        needs_wrk=True,
    ),
    Benchmark(
        "appends",
        "appends.py",
        ["--seconds", "4", "--writers", "8", "--level", "recorder", "--repeat", "3"],
        ["ledger appends, ours vs stock recorder, 8 writers on 8 tenants"],
        _appends,
    ),
    Benchmark(
        "rebuild",
        "rebuild.py",
        ["--events", "200000", "--as-of-events", "2000", "--repeat", "20"],
        ["projection rebuild events/s vs raw read of the same rows"],
        _rebuild,
        timeout=240,
    ),
    Benchmark(
        "webhooks",
        "webhooks.py",
        ["--licenses", "50", "--changes", "10", "--rate", "100", "--seconds", "10"],
        ["webhook deliveries/s and event -> delivery p99 at 100 events/s"],
        _webhooks,
    ),
    Benchmark(
        "checkout",
        "checkout.py",
        ["--seconds", "3", "--repeat", "7", "--clients", "8", "--licenses", "10"],
        ["offline checkout req/s vs validate-key req/s"],
        _checkout,
    ),
]


def run_one(benchmark: Benchmark, logs: Path) -> Outcome:
    outcome = Outcome(benchmark)
    script = BENCH / benchmark.script
    unavailable = [Row(figure=f, ours="not available", note="") for f in benchmark.figures]
    if not script.exists():
        outcome.rows = [
            Row(**{**r.__dict__, "note": f"{benchmark.script} missing"}) for r in unavailable
        ]
        return outcome
    if benchmark.needs_wrk and shutil.which("wrk") is None:
        outcome.rows = [Row(**{**r.__dict__, "note": "wrk not installed"}) for r in unavailable]
        return outcome
    # As modules from the repository root: some scripts import `scripts.bench…`/`tests…`.
    command = [sys.executable, "-m", f"scripts.bench.{script.stem}", *benchmark.args]
    outcome.log = logs / f"{benchmark.name}.log"
    print(f"==> python {' '.join(command[1:])}", flush=True)
    started = time.perf_counter()
    stdout, stderr, status = _run(command, benchmark.timeout)
    left = drop_tagged_databases(DB_TAG)
    if left:
        stderr += f"\n[run_all] dropped databases left behind: {', '.join(left)}"
    outcome.seconds = time.perf_counter() - started
    outcome.log.write_text(f"$ {' '.join(command)}\n[{status}]\n{stdout}\n--- stderr ---\n{stderr}")
    rows: list[Row] = []
    if status == "0":
        try:
            rows = benchmark.read(stdout)
        except (ValueError, KeyError, TypeError):
            rows = []
    why = "no figure in its output" if status == "0" else f"exit {status}"
    outcome.rows = rows or [
        Row(**{**r.__dict__, "ours": "failed", "note": f"{why}; see {outcome.log.name}"})
        for r in unavailable
    ]
    print(f"    {outcome.seconds:.0f} s", flush=True)
    return outcome


def _run(command: list[str], timeout: float) -> tuple[str, str, str]:
    """(stdout, stderr, status). On timeout: SIGTERM to the script's process group (our
    scripts then stop their servers and drop their databases), SIGKILL if it lingers."""
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env={**os.environ, "BENCH_DB_TAG": DB_TAG},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
        return stdout, stderr, str(process.returncode)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            stdout, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
        return stdout, stderr, f"timed out after {timeout:.0f} s"


# The machine, for the record.


def machine() -> dict[str, str]:
    cpu = "unknown"
    with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = "unknown"
    with open("/proc/meminfo", encoding="ascii") as info:
        kib = int(info.readline().split()[1])
        memory = f"{kib / 1024 / 1024:.0f} GiB"
    try:
        with psycopg.connect(server_url(), connect_timeout=5) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            sync = conn.execute("SHOW synchronous_commit").fetchone()
            buffers = conn.execute("SHOW shared_buffers").fetchone()
        postgres = f"PostgreSQL {row[0] if row else '?'}"
        postgres += f" (synchronous_commit={sync[0] if sync else '?'},"
        postgres += f" shared_buffers={buffers[0] if buffers else '?'})"
    except psycopg.Error as e:
        postgres = f"PostgreSQL unreachable ({type(e).__name__})"
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": memory,
        "postgres": postgres,
        "python": platform.python_version(),
        "os": platform.platform(terse=True),
    }


def commit() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + (" + uncommitted changes" if git("status", "--porcelain") else "")


def table(outcomes: list[Outcome]) -> list[str]:
    lines = [
        "| # | figure | ours | baseline | ratio | target | met? |",
        "|---|---|---|---|---|---|---|",
    ]
    number = 0
    for outcome in outcomes:
        for row in outcome.rows:
            number += 1
            cells = (row.figure, row.ours, row.baseline, row.ratio, row.target, row.met)
            lines.append(f"| {number} | " + " | ".join(cells) + " |")
    return lines


def notes(outcomes: list[Outcome]) -> list[str]:
    lines = []
    number = 0
    for outcome in outcomes:
        for row in outcome.rows:
            number += 1
            if row.note:
                lines.append(f"{number}. {row.note}")
    return lines


def section(
    outcomes: list[Outcome], command: str, started: datetime, load: list[str], logs: Path
) -> str:
    facts = machine()
    total = sum(o.seconds for o in outcomes)
    parts = [
        BEGIN,
        "## Latest full run",
        "",
        f"Generated by `{command}` on {started:%Y-%m-%d %H:%M} UTC, commit {commit()},"
        f" in {total / 60:.1f} minutes (each script's output was kept in `{logs}`).",
        "",
        f"Machine: {facts['cpu']}, {facts['cores']} cores, {facts['memory']} RAM;"
        f" {facts['postgres']} on 127.0.0.1; Python {facts['python']}; {facts['os']}.",
        f"Load average (1 min) before/after each benchmark: {', '.join(load)} —"
        " other work on the machine during the run lowers every absolute figure;"
        " the ratios are measured against baselines taken in the same run.",
        "",
        *table(outcomes),
        "",
        "Notes:",
        "",
        *notes(outcomes),
        "",
        END,
    ]
    return "\n".join(parts)


def write_doc(text: str) -> None:
    current = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    if BEGIN in current and END in current:
        head, rest = current.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        updated = head + text + tail
    else:
        updated = current.rstrip("\n") + "\n\n" + text + "\n"
    DOC.write_text(updated)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = [b.name for b in BENCHMARKS]
    parser.add_argument("--only", nargs="+", choices=names, help="run only these")
    parser.add_argument("--no-write", action="store_true", help="do not update the doc")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print(
            WRK_MISSING + "\n(the HTTP benchmarks will be reported as not available)\n",
            flush=True,
        )
    started = datetime.now(UTC)
    logs = Path(tempfile.mkdtemp(prefix="licentric-bench-"))
    outcomes, load = [], []
    for benchmark in BENCHMARKS:
        if args.only and benchmark.name not in args.only:
            continue
        before = os.getloadavg()[0]
        outcomes.append(run_one(benchmark, logs))
        load.append(f"{benchmark.name} {before:.1f}/{os.getloadavg()[0]:.1f}")
    command = "python scripts/bench/run_all.py" + (
        f" --only {' '.join(args.only)}" if args.only else ""
    )
    print()
    print("\n".join(table(outcomes)))
    print()
    print("\n".join(notes(outcomes)))
    print(f"\nlogs: {logs}")
    if not args.no_write:
        write_doc(section(outcomes, command, started, load, logs))
        print(f"written: {DOC.relative_to(REPO)}")


if __name__ == "__main__":
    main()
