"""Wake the worker when a tenant's log grows (`pg_notify('licentric_events', tenant)`).

Appends notify after commit, coalesced (ledger/store/wakeups.py). A lost notification
only costs latency: the runner also polls.
"""

from __future__ import annotations

from collections.abc import Callable

from ledger.store.listen import ChannelListener
from ledger.store.wakeups import NOTIFY_CHANNEL


class LogListener(ChannelListener):
    def __init__(self, database_url: str, on_wake: Callable[[], None]) -> None:
        super().__init__(
            database_url, NOTIFY_CHANNEL, lambda _payload: on_wake(), name="log-listener"
        )
