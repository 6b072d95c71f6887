"""``create_app(config)``: the Falcon application, wired from a :class:`Config`."""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

import falcon

from api import errors
from api import media
from api.probes import database_probe
from api.probes import redis_probe
from api.request_id import RequestIdMiddleware
from api.resources.health import HealthResource
from api.resources.health import ReadyResource

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

    from api.config import Config

API_PREFIX = "/api/v1"


def create_app(
    config: Config, *, pool: ConnectionPool | None = None
) -> falcon.App[falcon.Request, falcon.Response]:
    """Build the WSGI app. Opens no connection: probes and pools connect lazily."""
    if config.database_url is None:
        msg = "create_app needs config.database_url (the CLI resolves embedded mode first)"
        raise ValueError(msg)
    # RequestId first so an id exists before anything else can fail.
    middleware: list[Any] = [RequestIdMiddleware(), media.BodyLimitMiddleware()]
    app = falcon.App(media_type=falcon.MEDIA_JSON, middleware=middleware)
    media.install(app)
    errors.install(app)

    redis = redis_probe(config.redis_url) if config.redis_url else None
    app.add_route(f"{API_PREFIX}/health", HealthResource())
    app.add_route(
        f"{API_PREFIX}/ready",
        ReadyResource(database=database_probe(config.database_url, pool), redis=redis),
    )
    return app
