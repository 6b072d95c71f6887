"""Offline checkouts/s over HTTP vs validate-key/s, same server, same run (target >= 25 %).

    python -m scripts.bench.checkout [--seconds 3] [--clients 8] [--licenses 20]
                                     [--repeat 9] [--workers 2] [--threads 4]
                                     [--profile SECONDS]

Starts `licentric serve` on a fresh database (rate limits off), opens an account and
issues `--licenses` licenses per client (each with one active machine); each client
cycles through its own, the way many machines refresh their files, so checkouts (which
append to the license's stream) neither contend on one stream nor pile hundreds of
checkouts onto one license. Then, in each trial, one phase of each kind (which goes
first alternates from trial to trial), each client process sending for `--seconds`:

- validate-key: `POST /licenses/validate-key {"key", "fingerprint"}` (no auth);
- checkout:     `POST /licenses/{id}/checkout {"fingerprint", "ttl": 86400}` (Bearer):
                read the license's facts (one statement), render, sign Ed25519, append
                `license.checked_out` with the checkout's row (one statement).

Prints, for each, requests/s and the server's CPU time per request (gunicorn processes
plus their Postgres backends, from /proc), medians of the trials, checkout /
validate-key by both measures, and the median of each trial's own ratio. Client and
server share the machine: trust the ratios more than the absolutes. On a shared host
even CPU time per request is not steady (one checkout phase took 1.4 ms of app CPU per
request, the one before it 2.3 ms, same code): the paired per-trial ratio is the figure
least moved by that.
`--profile N` then records the workers with py-spy for N seconds of checkouts and prints
where their Python time goes.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import multiprocessing as mp
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any
from urllib.parse import urlsplit

import orjson
import psycopg

from scripts.bench._db import drop_database
from scripts.bench._db import fresh_database
from scripts.bench._offline import offline_world
from scripts.bench._profile import profile_server
from tests.support.offline import OfflineLicense
from tests.support.processes import running_server


def _requests(kind: str, api_key: str, licenses: list[OfflineLicense]) -> list[tuple[str, bytes]]:
    """(path, body) of each request, encoded once: the client should cost little."""
    if kind == "validate":
        return [
            (
                "/api/v1/licenses/validate-key",
                orjson.dumps({"key": lic.key, "fingerprint": lic.fingerprint}),
            )
            for lic in licenses
        ]
    return [
        (
            f"/api/v1/licenses/{lic.license_id}/checkout",
            orjson.dumps({"fingerprint": lic.fingerprint, "ttl": 86400}),
        )
        for lic in licenses
    ]


def _client(
    kind: str, base_url: str, api_key: str, licenses: list[OfflineLicense], seconds: float, out: Any
) -> None:
    # http.client on one keep-alive connection: a fraction of `requests`' CPU per call,
    # which matters when client and server share two cores.
    parsed = urlsplit(base_url)
    conn = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port, timeout=30)
    headers = {"Content-Type": "application/json"}
    if kind == "checkout":
        headers["Authorization"] = f"Bearer {api_key}"
    done = failed = 0
    deadline = time.perf_counter() + seconds
    for path, body in itertools.cycle(_requests(kind, api_key, licenses)):
        if time.perf_counter() >= deadline:
            break
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status == 200:
            done += 1
        else:
            failed += 1
    conn.close()
    out.put((done, failed))


@dataclass(frozen=True)
class Phase:
    rate: float  # successful requests per second
    app_ms: float  # CPU per request of the server's processes (CLI, gunicorn)
    db_ms: float  # CPU per request of their Postgres backends

    @property
    def cpu_ms(self) -> float:
        return self.app_ms + self.db_ms


class ServerCpu:
    """CPU time used by the server's processes (its session: the CLI and gunicorn) and by
    the Postgres backends connected to the bench database, from /proc. Unlike req/s, it
    does not move with whatever else the machine is running."""

    def __init__(self, session_id: int, database_url: str) -> None:
        self._session_id = session_id
        self._admin = psycopg.connect(database_url, autocommit=True)
        self._database = self._admin.info.dbname
        self._ticks = os.sysconf("SC_CLK_TCK")

    def _pids(self) -> tuple[list[int], list[int]]:
        rows = self._admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (self._database,),
        ).fetchall()
        backends = [int(r[0]) for r in rows]
        session = [
            p for p in _all_pids() if _stat(p) is not None and int(_stat(p)[3]) == self._session_id
        ]
        return session, backends

    def seconds(self) -> tuple[float, float]:
        """(app processes, database backends) CPU seconds so far."""
        return self._sum(self._pids()[0]), self._sum(self._pids()[1])

    def _sum(self, pids: list[int]) -> float:
        total = 0
        for pid in pids:
            fields = _stat(pid)
            if fields is not None:
                total += int(fields[11]) + int(fields[12])  # utime + stime
        return total / self._ticks

    def close(self) -> None:
        self._admin.close()


def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat fields after the command name (field 3 onwards)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def _phase(
    kind: str,
    base_url: str,
    api_key: str,
    pools: list[list[OfflineLicense]],
    seconds: float,
    cpu: ServerCpu,
) -> Phase:
    out: Any = mp.Queue()
    procs = [
        mp.Process(target=_client, args=(kind, base_url, api_key, pool, seconds, out))
        for pool in pools
    ]
    cpu_before = cpu.seconds()
    started = time.perf_counter()
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - started
    cpu_after = cpu.seconds()
    failed = sum(f for _, f in results)
    if failed:
        print(f"  {kind}: {failed} non-200 answers")
    done = sum(d for d, _ in results)
    per_request = 1000 / max(done, 1)
    return Phase(
        done / elapsed,
        (cpu_after[0] - cpu_before[0]) * per_request,
        (cpu_after[1] - cpu_before[1]) * per_request,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--licenses", type=int, default=20, help="per client")
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument(
        "--async-commit",
        action="store_true",
        help="synchronous_commit=off for the bench database: takes the WAL flush (which a "
        "shared machine makes erratic) out of the checkout's commit, to compare CPU cost",
    )
    parser.add_argument(
        "--profile", type=float, default=0.0, metavar="SECONDS",
        help="after the trials, py-spy the workers under checkout load for SECONDS",
    )  # fmt: skip
    args = parser.parse_args()
    url = fresh_database()
    if args.async_commit:
        with psycopg.connect(url, autocommit=True) as conn:
            name = conn.info.dbname
            conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    try:
        with TemporaryDirectory() as scratch:
            world = offline_world(url, scratch, pools=args.clients, per_pool=args.licenses)
            env, live, pools = world.env, world.live, world.pools
            with running_server(
                env, log_dir=Path(scratch), workers=args.workers, threads=args.threads
            ) as server:
                cpu = ServerCpu(server.process.pid, url)
                phases: dict[str, list[Phase]] = {"validate": [], "checkout": []}
                try:
                    for kind in ("validate", "checkout"):  # warm up
                        _phase(kind, server.base_url, live.api_key, pools, 1.0, cpu)
                    for trial in range(args.repeat):
                        # Alternating which goes first: the machine's speed drifts (a
                        # shared host), and a fixed order would give one kind the drift.
                        order = (
                            ("validate", "checkout") if trial % 2 == 0 else ("checkout", "validate")
                        )
                        for kind in order:
                            phase = _phase(
                                kind, server.base_url, live.api_key, pools, args.seconds, cpu
                            )
                            phases[kind].append(phase)
                            print(
                                f"trial {trial + 1}: {kind:<8} {phase.rate:8.0f} req/s"
                                f"  CPU/request: app {phase.app_ms:5.2f} ms,"
                                f" database {phase.db_ms:5.2f} ms"
                            )
                    if args.profile:
                        profile = profile_server(
                            server,
                            lambda: _phase(
                                "checkout", server.base_url, live.api_key, pools, args.profile, cpu
                            ),
                            seconds=args.profile,
                        )
                        if profile is not None:
                            print(profile["text"])
                finally:
                    cpu.close()
        _report(phases["validate"], phases["checkout"])
    finally:
        drop_database(url)


def _report(validate: list[Phase], checkout: list[Phase]) -> None:
    """Medians of each kind, and the median of each trial's own ratio: the two phases of
    a trial run seconds apart, so they share the machine's state of the moment; on a
    shared host the speed of a whole phase has been seen to move by half."""
    rate_v = statistics.median(p.rate for p in validate)
    rate_c = statistics.median(p.rate for p in checkout)
    cost_v = statistics.median(p.cpu_ms for p in validate)
    cost_c = statistics.median(p.cpu_ms for p in checkout)
    paired = sorted(c.rate / v.rate for v, c in zip(validate, checkout, strict=True))
    paired_cpu = sorted(v.cpu_ms / c.cpu_ms for v, c in zip(validate, checkout, strict=True))
    print(f"\nmedians of {len(validate)} trials")
    print(f"validate-key {rate_v:8.0f} req/s  {cost_v:6.2f} ms CPU/request")
    print(f"checkout     {rate_c:8.0f} req/s  {cost_c:6.2f} ms CPU/request")
    print(f"ratio, req/s           {rate_c / rate_v:6.1%}  (target >= 25 %)")
    print(f"ratio, CPU per request {cost_v / cost_c:6.1%}")
    print(
        f"per-trial ratio, req/s: median {statistics.median(paired):6.1%}"
        f"  (min {paired[0]:.1%}, max {paired[-1]:.1%})"
    )
    print(
        f"per-trial ratio, CPU:   median {statistics.median(paired_cpu):6.1%}"
        f"  (min {paired_cpu[0]:.1%}, max {paired_cpu[-1]:.1%})"
    )


if __name__ == "__main__":
    main()
