"""Figures across tenants for monitoring: tailing consumers' lag, webhook backlog.

The app role sees no row without a tenant (row-level security), so these come from the
aggregate-only SECURITY DEFINER functions of migration 0011: sums, never a tenant's rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from psycopg import Cursor
from psycopg.rows import DictRow

# The tailing consumers with a stored position per tenant (names as in consumer_lag()).
CONSUMERS: Final = ("analytics", "resigner", "webhooks")
# Monitoring must answer promptly even when the database is slow (as the probes do).
TIMEOUT_MS: Final = 2000


@dataclass(frozen=True)
class WebhookCounts:
    backlog: int  # pending or in flight
    failed: int  # given up after the last retry


def consumer_lag(curs: Cursor[DictRow]) -> dict[str, int]:
    """Events logged and not yet consumed, summed over tenants, per consumer."""
    curs.execute(f"SET LOCAL statement_timeout = {TIMEOUT_MS}")
    rows = curs.execute("SELECT consumer, lag FROM consumer_lag()").fetchall()
    found = {r["consumer"]: int(r["lag"]) for r in rows}
    return {name: found.get(name, 0) for name in CONSUMERS}


def webhook_counts(curs: Cursor[DictRow]) -> WebhookCounts:
    curs.execute(f"SET LOCAL statement_timeout = {TIMEOUT_MS}")
    row = curs.execute("SELECT backlog, failed FROM webhook_delivery_counts()").fetchone()
    assert row is not None
    return WebhookCounts(int(row["backlog"]), int(row["failed"]))
