"""CPU per request of each thread of a running server, while a load runs.

    python scripts/bench/thread_cpu.py PID REQUESTS -- COMMAND...

Reads utime/stime of every thread of PID's process tree (`/proc/<pid>/task/*/stat`)
before and after COMMAND (a load generator, e.g. wrk), and prints each thread's CPU
divided by REQUESTS (or by the number wrk reports, when REQUESTS is `wrk`), with the
thread names Python gave them (from `py-spy dump`, when py-spy is installed). This is
how docs/benchmarks.md splits a validation's cost between gunicorn's threads, the
validation-events batcher and the rest.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        found.append(pid)
        frontier.extend(children.get(pid, []))
    return found


def thread_times(pids: list[int]) -> dict[tuple[int, int], tuple[float, float]]:
    times = {}
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            times[(pid, int(task.name))] = (int(fields[11]) / _TICK, int(fields[12]) / _TICK)
    return times


def thread_names(pids: list[int]) -> dict[int, str]:
    spy = shutil.which("py-spy")
    names: dict[int, str] = {}
    if spy is None:
        return names
    for pid in pids:
        # A process py-spy cannot read (permissions) just keeps its threads unnamed.
        command = [spy, "dump", "--pid", str(pid)]
        dump = subprocess.run(command, check=False, capture_output=True, text=True)
        for match in re.finditer(r'^Thread (\d+) \(\w+\): "([^"]*)"', dump.stdout, re.M):
            names[int(match[1])] = match[2]
    return names


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    root, requests, command = int(argv[0]), argv[1], argv[3:]
    pids = tree(root)
    names = thread_names(pids)
    before = thread_times(pids)
    load = subprocess.run(command, capture_output=True, text=True, check=True)
    after = thread_times(pids)
    if requests == "wrk":
        match = re.search(r"(\d+) requests in", load.stdout)
        assert match is not None, load.stdout
        count = int(match[1])
    else:
        count = int(requests)
    print(load.stdout.strip())
    rows = []
    for key, (user, system) in after.items():
        start = before.get(key, (0.0, 0.0))
        used = (user - start[0], system - start[1])
        if sum(used) > 0:
            rows.append((sum(used), used, key))
    rows.sort(reverse=True)
    total_user = sum(r[1][0] for r in rows)
    total_sys = sum(r[1][1] for r in rows)
    print(f"{count} requests; per request: user {total_user / count * 1e6:.0f} us, "
          f"system {total_sys / count * 1e6:.0f} us")  # fmt: skip
    for _, (user, system), (pid, tid) in rows:
        name = names.get(tid, "?")
        print(f"  pid {pid:>7} tid {tid:>7} {name:<28} user {user / count * 1e6:6.1f} us"
              f"  system {system / count * 1e6:6.1f} us")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
