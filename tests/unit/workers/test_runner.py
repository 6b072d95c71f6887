"""The worker runner: passes, idling, stopping, and loop isolation."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from dataclasses import field

from workers.runner import Runner


@dataclass
class CountingLoop:
    name: str = "counting"
    backlog: int = 0
    calls: int = 0
    on_call: list[object] = field(default_factory=list)

    def run_once(self) -> int:
        self.calls += 1
        if self.backlog:
            self.backlog -= 1
            return 1
        return 0


class BrokenLoop:
    name = "broken"

    def run_once(self) -> int:
        raise RuntimeError("downstream hiccup")


def test_once_runs_every_loop_a_single_time() -> None:
    first, second = CountingLoop(name="a"), CountingLoop(name="b")

    Runner([first, second]).run(once=True)

    assert (first.calls, second.calls) == (1, 1)


def test_a_failing_loop_does_not_starve_the_others() -> None:
    healthy = CountingLoop(backlog=1)

    handled = Runner([BrokenLoop(), healthy]).run_pass()

    assert handled == 1
    assert healthy.calls == 1


def test_busy_loops_drain_their_backlog_then_stop_on_request() -> None:
    loop = CountingLoop(backlog=50)
    runner = Runner([loop], poll_interval=10.0)
    thread = threading.Thread(target=runner.run)
    thread.start()

    while loop.backlog:
        threading.Event().wait(0.01)
    runner.stop()  # also cuts the 10 s idle wait short
    thread.join(timeout=5)

    assert not thread.is_alive()
    assert loop.calls >= 51
