"""`GET /analytics` (API.md §4): counts from read models and the analytics projection.

License and machine counts are indexed counts over the inline read models; activation
and validation figures come from the daily counters the analytics worker keeps
(projections/analytics.py), so no request scans the events. Those lag the log by the
worker's poll (see the `analytics` lag on /ready and /metrics).
"""

from __future__ import annotations

import falcon

from api.operations import operation
from api.resources.reads import reading
from api.resources.reads import respond_one
from api.schemas.analytics import ANALYTICS
from api.schemas.common import one
from api.services import Services
from ledger.domain.codes import Scope
from projections.analytics import analytics


class AnalyticsResource:
    def __init__(self, services: Services) -> None:
        self._services = services

    @operation(
        summary="Counts of licenses, machines, activations and validations",
        scope=Scope.ANALYTICS_READ,
        responses={200: one(ANALYTICS)},
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        with reading(self._services, req) as curs:
            respond_one(resp, analytics(curs, self._services.clock()))
