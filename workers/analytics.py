"""The analytics loop: keeps the per-tenant daily counters of `GET /analytics` current.

Each pass asks which tenants have events it has not counted (one narrow SECURITY
DEFINER listing), then counts one batch per tenant under that tenant's row-level
security (projections/analytics.py), position and counters in one transaction.
"""

from __future__ import annotations

import logging

from ledger.application import LedgerApplication
from projections.analytics import consume
from projections.analytics import tenants_behind

_log = logging.getLogger(__name__)

DEFAULT_TENANTS_PER_PASS = 100
DEFAULT_EVENTS_PER_BATCH = 1000


class AnalyticsProjection:
    name = "analytics"

    def __init__(
        self,
        ledger: LedgerApplication,
        *,
        tenants_per_pass: int = DEFAULT_TENANTS_PER_PASS,
        events_per_batch: int = DEFAULT_EVENTS_PER_BATCH,
    ) -> None:
        self._ledger = ledger
        self._tenants_per_pass = tenants_per_pass
        self._events_per_batch = events_per_batch

    def run_once(self) -> int:
        """One batch per tenant that is behind; returns how many events were read."""
        with self._ledger.transaction() as curs:
            behind = tenants_behind(curs, self._tenants_per_pass)
        read = 0
        for tenant in behind:
            try:
                with self._ledger.reading(tenant.tenant_id) as curs:
                    read += consume(curs, tenant.tenant_id, limit=self._events_per_batch)
            except Exception:  # one tenant failing must not starve the others
                _log.exception("analytics failed", extra={"tenant": str(tenant.tenant_id)})
        return read

    def catch_up(self) -> None:
        """Run passes until no tenant is behind (tests, and the CLI's one-shot use)."""
        while self.run_once():
            pass


def analytics_loops(ledger: LedgerApplication) -> list[AnalyticsProjection]:
    return [AnalyticsProjection(ledger)]
