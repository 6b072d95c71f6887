"""CPU time spent serving a trial: the server's processes and its PostgreSQL backends.

Requests per second on a shared 2-core machine depend on what else runs; CPU time per
request much less so. Read from /proc (utime + stime) before and after a trial for the
server's process tree and for the backends connected to its database.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import psycopg

_TICK = os.sysconf("SC_CLK_TCK")


def _process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        tree.append(pid)
        frontier.extend(children.get(pid, []))
    return tree


def cpu_seconds(pids: list[int], *, reaped: bool = False) -> dict[int, float]:
    """utime + stime of each process; with `reaped`, plus cutime + cstime: the CPU of
    its children that exited (gunicorn's arbiter reaps recycled workers)."""
    seconds = {}
    for pid in pids:
        with contextlib.suppress(OSError, IndexError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            used = int(fields[11]) + int(fields[12])
            if reaped:
                used += int(fields[13]) + int(fields[14])
            seconds[pid] = used / _TICK
    return seconds


def backend_pids(database_url: str) -> list[int]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return [row[0] for row in rows]


@dataclass
class CpuSpent:
    server: float = 0.0  # seconds, the server's process tree
    database: float = 0.0  # seconds, its database's backends


class CpuMeter:
    """`with CpuMeter(server_pid, url) as spent: ...` fills `spent` on exit."""

    def __init__(self, server_pid: int, database_url: str | None) -> None:
        self._root = server_pid
        self._url = database_url
        self.spent = CpuSpent()

    def _sample(self) -> tuple[dict[int, float], dict[int, float]]:
        backends = backend_pids(self._url) if self._url else []
        return cpu_seconds(_process_tree(self._root), reaped=True), cpu_seconds(backends)

    def __enter__(self) -> CpuSpent:
        self._start = self._sample()
        return self.spent

    def __exit__(self, *exc: object) -> None:
        end = self._sample()
        # The server's tree as a whole: a worker recycled during the trial is gone from
        # it, but its whole CPU time moved into the arbiter's reaped-children time.
        self.spent.server = sum(end[0].values()) - sum(self._start[0].values())
        # Backends one by one; one that connected during the trial counts from zero (one
        # that disconnected is lost: rare, a recycled worker's connections).
        self.spent.database = sum(v - self._start[1].get(p, 0.0) for p, v in end[1].items())
