"""The README tour (scripts/tour.sh) against a real server, so the README stays true."""

from __future__ import annotations

import os
import subprocess

from ledger.accounts import OpenedEnvironment
from tests.support.processes import ServerProcess


def test_the_readme_tour_runs(server: ServerProcess, live: OpenedEnvironment) -> None:
    result = subprocess.run(
        ["bash", "scripts/tour.sh"],
        env={"PATH": os.environ["PATH"], "BASE": server.base_url, "KEY": live.api_key},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    lines = result.stdout.splitlines()
    assert lines[1:] == [
        "before activation: FINGERPRINT_NOT_FOUND",
        "after activation: VALID",
        "ALIVE",
        "-----BEGIN LICENSE FILE-----",
        "suspended: SUSPENDED",
        "license.created",
    ]
