"""Prometheus metrics (`GET /metrics`, text format; not under /api/v1).

Gunicorn runs several worker processes: with `PROMETHEUS_MULTIPROC_DIR` set (the
`licentric serve` command sets it) every worker writes its samples to files there and a
scrape, answered by any worker, aggregates all of them. Without it (tests, a single
process) the default in-process registry is used.

Series (see docs/operations.md):
- licentric_http_request_duration_seconds{method, route, status}: latency per route
  template (never the raw path: ids and license keys would explode the label set and
  leak into monitoring);
- licentric_validations_total{code}: validation results by code;
- licentric_rate_limit_fail_open_total: requests served unchecked while Redis was down;
- database-derived gauges (consumer lag, webhook backlog) are added by collectors that
  query at scrape time (`register_scrape_collector`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from collections.abc import Iterable
from typing import Any

import falcon
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client import REGISTRY
from prometheus_client import CollectorRegistry
from prometheus_client import Counter
from prometheus_client import Histogram
from prometheus_client import generate_latest
from prometheus_client import multiprocess
from prometheus_client import values
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from api.auth import Auth

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class _ProcessId:
    """`os.getpid()` without the system call: prometheus_client's multiprocess values
    check the pid on every update (a fork must open its own files), ~2 µs each on
    these VMs, three times per validation. Kept current by a fork hook, so it is what
    `os.getpid()` would say."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        os.register_at_fork(after_in_child=self._forked)

    def _forked(self) -> None:
        self.pid = os.getpid()

    def __call__(self) -> int:
        return self.pid


if os.environ.get(MULTIPROC_ENV):
    # Before the first metric is made: values take their class from here.
    values.ValueClass = values.MultiProcessValue(process_identifier=_ProcessId())  # type: ignore[no-untyped-call]

REQUEST_SECONDS = Histogram(
    "licentric_http_request_duration_seconds",
    "HTTP request latency by route template.",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
VALIDATIONS = Counter("licentric_validations", "License validations by result code.", ["code"])
RATE_LIMIT_FAIL_OPEN = Counter(
    "licentric_rate_limit_fail_open",
    "Requests served without a rate-limit check because Redis was unavailable.",
)

_scrape_collectors: list[Callable[[], Iterable[Metric]]] = []


def register_scrape_collector(collect: Callable[[], Iterable[Metric]]) -> None:
    """Gauges read from the database when scraped (consumer lag, webhook backlog)."""
    _scrape_collectors.append(collect)


class _ScrapeTime(Collector):
    def collect(self) -> Iterable[Metric]:
        for collect in _scrape_collectors:
            try:
                yield from collect()
            except Exception:  # noqa: S112  (a failing gauge must not break the scrape)
                continue


class MetricsMiddleware:
    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.started = time.perf_counter()

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        started = getattr(req.context, "started", None)
        if started is None:
            return
        route = req.uri_template if resource is not None else "unmatched"
        REQUEST_SECONDS.labels(req.method, route, str(resp.status_code)).observe(
            time.perf_counter() - started
        )


class MetricsResource:
    auth = Auth.NONE

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        if os.environ.get(MULTIPROC_ENV):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        else:
            registry = REGISTRY
        body = generate_latest(registry)
        if _scrape_collectors:
            scrape = CollectorRegistry()
            scrape.register(_ScrapeTime())
            body += generate_latest(scrape)
        resp.content_type = CONTENT_TYPE_LATEST
        resp.data = body
