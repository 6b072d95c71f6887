"""Profile a running server's gunicorn workers with py-spy while load runs, and summarise.

py-spy samples the workers from outside (no change to the server) with
`--subprocesses --gil`: only the thread holding the GIL is sampled, so the shares are of
the workers' CPU time in Python (threads waiting on a socket or the database are not in
them; neither is the PostgreSQL backend's own time). Install: `pip install py-spy`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from typing import Protocol


class Running(Protocol):
    """A started server (scripts/bench/_servers.Server, tests/support ServerProcess)."""

    @property
    def process(self) -> subprocess.Popen[Any]: ...


_FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")
_TOP = 25


def profile_server(
    server: Running, load: Callable[[], object], *, seconds: float, out: Path | None = None
) -> dict[str, Any] | None:
    spy = shutil.which("py-spy")
    if spy is None:
        print("py-spy is not installed (`pip install py-spy`): no profile", file=sys.stderr)
        return None
    with tempfile.TemporaryDirectory() as scratch:
        raw = out or Path(scratch) / "profile.txt"
        recorder = subprocess.Popen(
            [
                spy,
                "record",
                "--pid",
                str(server.process.pid),
                "--subprocesses",
                "--gil",  # only the thread holding the GIL: CPU in Python, not waits
                "--duration",
                str(round(seconds)),
                "--rate",
                "200",
                "--format",
                "raw",
                "--output",
                str(raw),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        load()
        _, errors = recorder.communicate(timeout=seconds + 60)
        if recorder.returncode != 0 or not raw.exists():
            print(f"py-spy failed: {errors.strip()[-2000:]}", file=sys.stderr)
            return None
        return summarise(raw.read_text())


def summarise(collapsed: str) -> dict[str, Any]:
    """Self and inclusive shares per function from py-spy's collapsed stacks."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_name(f) for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
    lines = [f"py-spy: {total} samples of the workers' threads holding the GIL"]
    lines.append("self time (where the CPU is):")
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in own.most_common(_TOP)]
    lines.append("inclusive (time under the function):")
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(_TOP)]
    return {
        "samples": total,
        "self": [(name, round(n / total, 4)) for name, n in own.most_common(_TOP)],
        "inclusive": [(name, round(n / total, 4)) for name, n in inclusive.most_common(_TOP)],
        "text": "\n".join(lines),
    }


def _name(frame: str) -> str:
    """`function (path/to/module.py:123)` -> `module.py:function` (short and stable)."""
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    return f"{Path(match['file']).name}:{match['function']}"
