"""wrk, the load generator of the HTTP benchmarks: a separate process, never the server's.

Requests come from a file of lines (`write_requests`) that `wrk_requests.lua` formats once
per wrk thread; wrk prints one `WRK_JSON {...}` line that `run_wrk` parses.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

LUA_SCRIPT = Path(__file__).with_name("wrk_requests.lua")
MISSING = (
    "wrk is not installed. The HTTP benchmarks need it as their load generator (a separate\n"
    "process, not inside the server): `apt-get install -y wrk` on Debian/Ubuntu\n"
    "(run `apt-get update` first if the package is not found). Benchmarks are not part of CI."
)


def require_wrk() -> str:
    """The path of wrk, or exit with a message saying how to install it."""
    path = shutil.which("wrk")
    if path is None:
        print(MISSING, file=sys.stderr)
        raise SystemExit(2)
    return path


@dataclass(frozen=True)
class Request:
    path: str
    body: bytes
    authorization: str | None = None


def write_requests(file: Path, requests: Iterable[Request]) -> int:
    count = 0
    with file.open("wb") as out:
        for r in requests:
            if b"\n" in r.body or b"\t" in r.body:
                msg = "request bodies must be one line without tabs (compact JSON)"
                raise ValueError(msg)
            auth = r.authorization or "-"
            out.write(f"{r.path}\t{auth}\t".encode() + r.body + b"\n")
            count += 1
    return count


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    errors: dict[str, int]
    statuses: dict[str, int]
    wrapped: int  # times a thread ran out of request lines and started over

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def failed(self) -> int:
        return sum(self.errors.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "rps": round(self.rps, 1),
            "p50_ms": self.p50_ms,
            "p90_ms": self.p90_ms,
            "p99_ms": self.p99_ms,
            "mean_ms": self.mean_ms,
            "errors": self.errors,
            "statuses": self.statuses,
        }


def run_wrk(
    base_url: str,
    requests_file: Path,
    *,
    seconds: float,
    connections: int,
    threads: int = 2,
    count_status: bool = False,
) -> WrkResult:
    wrk = require_wrk()
    threads = max(1, min(threads, connections))
    env = dict(os.environ)
    env.update(
        BENCH_WRK_LINES=str(requests_file),
        BENCH_WRK_THREADS=str(threads),
        BENCH_WRK_STATUS="1" if count_status else "0",
    )
    command = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA_SCRIPT),
        base_url,
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRK_JSON ")), None)
    if done.returncode != 0 or line is None:
        msg = f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        raise RuntimeError(msg)
    data = orjson.loads(line.removeprefix("WRK_JSON "))
    return WrkResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        mean_ms=data["mean_us"] / 1000,
        errors=data["errors"],
        statuses=data["statuses"],
        wrapped=data["wrapped"],
    )
