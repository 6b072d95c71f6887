"""Tailing consumers are woken after an append commits (LISTEN licentric_events)."""

from __future__ import annotations

import time
from collections.abc import Callable
from uuid import uuid4

import psycopg

from ledger.application import LedgerApplication
from ledger.store.wakeups import NOTIFY_CHANNEL
from tests.integration.ledger.helpers import new_license


def test_append_wakes_listeners_with_the_tenant_id(fresh_database: Callable[[], str]) -> None:
    url = fresh_database()
    app = LedgerApplication(url, pool_size=2)
    tenant = uuid4()
    try:
        with psycopg.connect(url, autocommit=True) as listener:
            listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
            app.save_in(tenant, new_license())
            deadline = time.monotonic() + 5
            payloads = []
            while time.monotonic() < deadline and str(tenant) not in payloads:
                payloads += [n.payload for n in listener.notifies(timeout=0.5, stop_after=1)]
        assert str(tenant) in payloads
    finally:
        app.close()
