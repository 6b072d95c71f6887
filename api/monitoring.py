"""Database-derived gauges for `/metrics` and the lag `/ready` reports.

Read at scrape time (api.metrics.register_scrape_collector) rather than kept as
counters: any gunicorn worker may answer a scrape, and the figures are the database's,
not a process's. The collector is registered once per process; `watch` points it at
the ledger of the app most recently built (one per process outside tests).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from collections.abc import Iterable

from prometheus_client.metrics_core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from api.metrics import register_scrape_collector
from api.services import Services
from projections.monitoring import consumer_lag
from projections.monitoring import webhook_counts

LagSource = Callable[[], dict[str, int]]

_lock = threading.Lock()
_watched: list[Services] = []


def lag_of(services: Services) -> LagSource:
    def lag() -> dict[str, int]:
        with services.ledger.transaction() as curs:
            return consumer_lag(curs)

    return lag


def collect() -> Iterable[Metric]:
    if not _watched:
        return
    services = _watched[0]
    lag = GaugeMetricFamily(
        "licentric_consumer_lag_events",
        "Events logged but not yet consumed, summed over tenants, per tailing consumer.",
        labels=["consumer"],
    )
    for consumer, events in lag_of(services)().items():
        lag.add_metric([consumer], events)
    yield lag
    with services.ledger.transaction() as curs:
        counts = webhook_counts(curs)
    yield GaugeMetricFamily(
        "licentric_webhook_backlog_deliveries",
        "Webhook deliveries pending or in flight.",
        value=counts.backlog,
    )
    yield GaugeMetricFamily(
        "licentric_webhook_failed_deliveries",
        "Webhook deliveries that failed after their last retry.",
        value=counts.failed,
    )


def watch(services: Services) -> None:
    """Report the gauges of `services`' database (registers the collector once)."""
    with _lock:
        if not _watched:
            register_scrape_collector(collect)
            _watched.append(services)
        else:
            _watched[0] = services
