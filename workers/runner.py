"""The worker process's main loop: run every :class:`Loop` until told to stop.

Each loop does one bounded batch per call and says how much it did; when a whole pass
finds nothing to do, the runner sleeps until the poll interval passes or something calls
:meth:`Runner.wake` (a future LISTEN/NOTIFY listener). SIGTERM only sets a flag: the
batch in hand finishes, then the process exits 0 (ARCHITECTURE.md §5).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Sequence
from types import FrameType
from typing import Protocol

_log = logging.getLogger(__name__)


class Loop(Protocol):
    """One kind of background work (webhooks, timers, re-signer…)."""

    name: str

    def run_once(self) -> int:
        """Process one bounded batch; return how many items were handled (0 = idle)."""
        ...


class Runner:
    def __init__(self, loops: Sequence[Loop], *, poll_interval: float = 1.0) -> None:
        self._loops = tuple(loops)
        self._poll_interval = poll_interval
        self._stopping = threading.Event()
        self._wakeup = threading.Event()
        # Loops with work finishing in the background (webhook sends) cut the idle
        # sleep short through this hook when a slot frees.
        for loop in self._loops:
            bind = getattr(loop, "bind_wake", None)
            if callable(bind):
                bind(self.wake)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stop(self) -> None:
        """Ask the runner to exit after the batch in hand (safe from signal handlers)."""
        self._stopping.set()
        self._wakeup.set()

    def wake(self) -> None:
        """Cut the current idle sleep short (new work was announced)."""
        self._wakeup.set()

    def install_signal_handlers(self) -> None:
        def handle(signum: int, frame: FrameType | None) -> None:
            _log.info("stopping after the current batch", extra={"signal": signum})
            self.stop()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)

    def run_pass(self) -> int:
        """Give each loop one batch; one loop failing must not starve the others."""
        handled = 0
        for loop in self._loops:
            if self.stopping:
                break
            try:
                handled += loop.run_once()
            except Exception:
                _log.exception("loop failed; retrying next pass", extra={"loop": loop.name})
        return handled

    def run(self, *, once: bool = False) -> None:
        try:
            if once:
                self.run_pass()
                return
            while not self.stopping:
                if self.run_pass() == 0:
                    # Busy loops go straight on; idle ones wait for a wake-up or the poll.
                    self._wakeup.wait(self._poll_interval)
                    self._wakeup.clear()
        finally:
            self._close_loops()

    def _close_loops(self) -> None:
        """Let loops with background work finish what they hold (e.g. sends in flight)."""
        for loop in self._loops:
            close = getattr(loop, "close", None)
            if callable(close):
                try:
                    close()
                except Exception:
                    _log.exception("loop failed to close", extra={"loop": loop.name})
