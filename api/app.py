"""``create_app(config)``: the Falcon application, wired from a :class:`Config`."""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

import falcon

from api import errors
from api import media
from api.auth import AuthMiddleware
from api.facts_cache import FactsCache
from api.idempotency import IdempotencyMiddleware
from api.metrics import MetricsMiddleware
from api.metrics import MetricsResource
from api.monitoring import lag_of
from api.monitoring import watch
from api.openapi import OpenApiResource
from api.probes import database_probe
from api.probes import redis_probe
from api.ratelimit import RateLimitMiddleware
from api.request_id import RequestIdMiddleware
from api.resources.accounts import AccountCollection
from api.resources.analytics import AnalyticsResource
from api.resources.api_keys import ApiKeyCollection
from api.resources.api_keys import ApiKeyItem
from api.resources.entitlements import EntitlementCollection
from api.resources.entitlements import EntitlementItem
from api.resources.health import HealthResource
from api.resources.health import ReadyResource
from api.resources.history import AuditHead
from api.resources.history import EventFeed
from api.resources.history import LicenseEvents
from api.resources.license_actions import ACTIONS as LICENSE_ACTIONS
from api.resources.license_actions import LicenseActions
from api.resources.license_actions import LicenseEntitlements
from api.resources.licenses import LicenseByKey
from api.resources.licenses import LicenseCollection
from api.resources.licenses import LicenseItem
from api.resources.machines import MachineCollection
from api.resources.machines import MachineItem
from api.resources.offline import LicenseCheckout
from api.resources.offline import LicenseCheckoutCollection
from api.resources.offline import LicenseOfflineFile
from api.resources.policies import PolicyCollection
from api.resources.policies import PolicyEntitlements
from api.resources.policies import PolicyItem
from api.resources.products import ProductCollection
from api.resources.products import ProductItem
from api.resources.signing_keys import SigningKeyCollection
from api.resources.signing_keys import SigningKeyRotation
from api.resources.validation import LicenseValidate
from api.resources.validation import ValidateKey
from api.resources.webhooks import add_webhook_routes
from api.routing import RouteTable
from api.services import LazyLedger
from api.services import Services
from api.validate_fast_path import ValidateKeyFastPath
from api.validator import Validator
from ledger.application import LedgerApplication
from projections.inline import InlineProjections

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

    from api.config import Config

API_PREFIX = "/api/v1"


class LedgerApp(falcon.App):  # type: ignore[type-arg]
    """falcon.App plus its route table (the OpenAPI document and tests enumerate it), and
    the validate-key fast path in front of Falcon's request cycle (when one is set)."""

    routes: RouteTable
    fast_path: ValidateKeyFastPath | None = None
    facts_cache: FactsCache | None = None

    def __call__(self, env: dict[str, Any], start_response: Any) -> Any:
        fast = self.fast_path
        if fast is not None:
            served = fast(env, start_response)
            if served is not None:
                return served
        return super().__call__(env, start_response)


def ledger_application(config: Config) -> LedgerApplication:
    """One application (and connection pool) per process, sized to its threads."""
    assert config.database_url is not None
    return LedgerApplication(
        config.database_url, pool_size=config.threads + 1, projector=InlineProjections()
    )


def add_routes(routes: RouteTable, services: Services, validator: Validator) -> None:
    """Every /api/v1 route; the OpenAPI document is generated from this table."""
    v1 = API_PREFIX
    routes.add(f"{v1}/products", ProductCollection(services))
    routes.add(f"{v1}/products/{{product_id:uuid}}", ProductItem(services))
    routes.add(f"{v1}/policies", PolicyCollection(services))
    routes.add(f"{v1}/policies/{{policy_id:uuid}}", PolicyItem(services))
    routes.add(f"{v1}/policies/{{policy_id:uuid}}/entitlements", PolicyEntitlements(services))
    routes.add(f"{v1}/entitlements", EntitlementCollection(services))
    routes.add(f"{v1}/entitlements/{{entitlement_id:uuid}}", EntitlementItem(services))
    routes.add(f"{v1}/api-keys", ApiKeyCollection(services))
    routes.add(f"{v1}/api-keys/{{api_key_id:uuid}}", ApiKeyItem(services))
    routes.add(f"{v1}/admin/accounts", AccountCollection(services))
    routes.add(f"{v1}/licenses", LicenseCollection(services))
    routes.add(f"{v1}/licenses/by-key/{{key}}", LicenseByKey(services))
    routes.add(f"{v1}/licenses/{{license_id:uuid}}", LicenseItem(services))
    license_actions = LicenseActions(services)
    for segment, suffix in LICENSE_ACTIONS.items():
        routes.add(f"{v1}/licenses/{{license_id:uuid}}/{segment}", license_actions, suffix=suffix)
    routes.add(f"{v1}/licenses/{{license_id:uuid}}/entitlements", LicenseEntitlements(services))
    routes.add(f"{v1}/licenses/{{license_id:uuid}}/checkout", LicenseCheckout(services))
    routes.add(f"{v1}/licenses/{{license_id:uuid}}/offline-file", LicenseOfflineFile(services))
    routes.add(f"{v1}/licenses/{{license_id:uuid}}/checkouts", LicenseCheckoutCollection(services))
    routes.add(f"{v1}/signing-keys", SigningKeyCollection(services))
    routes.add(f"{v1}/signing-keys/rotate", SigningKeyRotation(services))
    routes.add(f"{v1}/licenses/validate-key", ValidateKey(services, validator))
    routes.add(f"{v1}/licenses/{{license_id:uuid}}/validate", LicenseValidate(services, validator))
    machine = MachineItem(services)
    routes.add(f"{v1}/machines", MachineCollection(services))
    routes.add(f"{v1}/machines/{{machine_id:uuid}}", machine)
    routes.add(f"{v1}/machines/{{machine_id:uuid}}/heartbeat", machine, suffix="heartbeat")
    routes.add(f"{v1}/licenses/{{license_id:uuid}}/events", LicenseEvents(services))
    routes.add(f"{v1}/events", EventFeed(services))
    routes.add(f"{v1}/audit/head", AuditHead(services))
    routes.add(f"{v1}/analytics", AnalyticsResource(services))
    add_webhook_routes(routes, services, v1)
    routes.add(f"{v1}/openapi.json", OpenApiResource(routes))


def create_app(
    config: Config,
    *,
    pool: ConnectionPool | None = None,
    services: Services | None = None,
) -> LedgerApp:
    """Build the WSGI app. Opens no connection: probes and pools connect lazily."""
    if config.database_url is None:
        msg = "create_app needs config.database_url (the CLI resolves embedded mode first)"
        raise ValueError(msg)
    services = services or Services(LazyLedger(lambda: ledger_application(config)), config)
    # RequestId first so an id exists before anything else can fail; auth before
    # idempotency, whose keys are scoped to the credential.
    limits = RateLimitMiddleware(config) if config.rate_limits_enabled else None
    # One cache per process: validation facts and resolved credentials, one listener.
    cache = FactsCache(config.database_url, max_entries=config.facts_cache_size)
    middleware: list[Any] = [
        RequestIdMiddleware(),
        MetricsMiddleware(),
        media.BodyLimitMiddleware(),
        AuthMiddleware(services, cache),
        *([limits] if limits is not None else []),
        IdempotencyMiddleware(services),
    ]
    app = LedgerApp(media_type=falcon.MEDIA_JSON, middleware=middleware)
    media.install(app)
    errors.install(app)

    redis = redis_probe(config.redis_url) if config.redis_url else None
    routes = RouteTable(app)
    # Prometheus scrapes /metrics at the root, as is conventional; not an API resource.
    app.add_route("/metrics", MetricsResource())
    watch(services)
    routes.add(f"{API_PREFIX}/health", HealthResource())
    routes.add(
        f"{API_PREFIX}/ready",
        ReadyResource(
            database=database_probe(config.database_url, pool), redis=redis, lag=lag_of(services)
        ),
    )
    validator = Validator(services, cache=cache)
    add_routes(routes, services, validator)
    app.routes = routes
    app.facts_cache = cache
    # The same limiter instance: one count per request, whichever path serves it.
    app.fast_path = ValidateKeyFastPath(validator, limits)
    return app
