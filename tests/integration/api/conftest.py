"""The API in-process (falcon TestClient) over a real PostgreSQL database.

Every response a test receives through `client` is checked against the schema the
OpenAPI document publishes for that route, method and status: the document cannot
drift from what the server sends without a test failing.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from typing import Any

import falcon
import falcon.testing
import pytest
from jsonschema import Draft202012Validator

from api.app import LedgerApp
from api.app import create_app
from api.app import ledger_application
from api.config import Config
from api.facts_cache import FactsCache
from api.routing import RouteTable
from api.services import Services
from api.validation_events import close_all
from ledger.accounts import open_account
from ledger.application import LedgerApplication
from ledger.domain.templates import PolicySettings
from tests.support.licensing import IssuedKey
from tests.support.licensing import issue

ADMIN_TOKEN = "test-operator-token-" + "x" * 20


@dataclass
class Tenant:
    """One environment of an account: its API key and signing material."""

    account_id: str
    environment: str
    tenant_id: str
    api_key: str
    signing_key: str
    public_key: str


@dataclass
class Account:
    live: Tenant
    test: Tenant


class CheckedClient:
    """A TestClient whose every response must match the documented schema."""

    def __init__(self, app: falcon.App[Any, Any]) -> None:
        self.app = app
        self._client = falcon.testing.TestClient(app)
        self.routes: RouteTable = app.routes  # type: ignore[attr-defined]

    def request(
        self,
        method: str,
        path: str,
        *,
        key: str | None = None,
        auth: str | None = None,
        json: Any = None,
        body: str | bytes | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
        remote_addr: str | None = None,
    ) -> falcon.testing.Result:
        all_headers = dict(headers or {})
        if key is not None:
            all_headers["Authorization"] = f"Bearer {key}"
        if auth is not None:
            all_headers["Authorization"] = auth
        result = self._client.simulate_request(
            method,
            path,
            json=json,
            body=body,
            headers=all_headers,
            params=params,
            remote_addr=remote_addr,
        )
        check_documented(self.routes, method, path, result)
        return result

    def get(self, path: str, **kw: Any) -> falcon.testing.Result:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> falcon.testing.Result:
        return self.request("POST", path, **kw)

    def patch(self, path: str, **kw: Any) -> falcon.testing.Result:
        return self.request("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> falcon.testing.Result:
        return self.request("DELETE", path, **kw)


def check_documented(
    routes: RouteTable, method: str, path: str, result: falcon.testing.Result
) -> None:
    """The response body matches the OpenAPI schema for its status (errors included)."""
    from api.openapi import build_document  # noqa: PLC0415

    found = routes.find(method, path)
    if found is None:
        return  # unknown route: the error envelope is checked by the error tests
    route, spec = found
    assert spec is not None, f"{method} {route.template} has no @operation"
    document = build_document(routes)
    responses = document["paths"][route.path][method.lower()]["responses"]
    assert str(result.status_code) in responses, (
        f"{method} {path} answered {result.status_code}, not documented: {result.text[:300]}"
    )
    content = responses[str(result.status_code)].get("content")
    if content is None:
        assert not result.content, f"{method} {path}: undocumented body"
        return
    if "application/json" not in content:
        # A documented non-JSON body (a license file): its media type is the contract.
        media_type = (result.headers.get("content-type") or "").split(";")[0].strip()
        assert media_type in content, f"{method} {path}: {media_type} is not documented"
        return
    schema = content["application/json"]["schema"]
    errors = sorted(Draft202012Validator(schema).iter_errors(result.json), key=str)
    assert not errors, f"{method} {path} {result.status_code}: {errors[0].message}"


@pytest.fixture(scope="module")
def database(fresh_database: Callable[[], str]) -> str:
    return fresh_database()


@pytest.fixture(scope="module")
def config(database: str, tmp_path_factory: pytest.TempPathFactory) -> Config:
    return Config.from_env(
        {
            "DATABASE_URL": database,
            "LICENTRIC_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
            "LICENTRIC_ADMIN_TOKEN": ADMIN_TOKEN,
            # Limits have their own tests; here they would only throttle the suite.
            "LICENTRIC_RATE_LIMITS": "off",
            "LICENTRIC_DATA_DIR": str(tmp_path_factory.mktemp("data")),
        }
    )


@pytest.fixture(scope="module")
def ledger(config: Config) -> Iterator[LedgerApplication]:
    app = ledger_application(config)
    yield app
    app.close()


@pytest.fixture(scope="module")
def client(config: Config, ledger: LedgerApplication) -> CheckedClient:
    return CheckedClient(create_app(config, services=Services(ledger, config)))


@pytest.fixture(scope="module")
def cache(client: CheckedClient) -> FactsCache:
    """The app's facts cache (validation facts and resolved credentials)."""
    app = client.app
    assert isinstance(app, LedgerApp)
    assert app.facts_cache is not None
    return app.facts_cache


@pytest.fixture(scope="module")
def new_account(ledger: LedgerApplication, config: Config) -> Callable[[], Account]:
    """Factory: a fresh account (two tenants) with its full-access API keys."""

    def make() -> Account:
        opened = open_account(
            ledger,
            name="acct-" + secrets.token_hex(3),
            master_key=config.master_key,
            pepper=config.pepper,
            at=datetime.now(UTC),
        )
        doc = opened.document()
        tenants = {
            name: Tenant(
                account_id=doc["accountId"],
                environment=name,
                tenant_id=str(env.tenant_id),
                api_key=doc["environments"][name]["apiKey"],
                signing_key=doc["environments"][name]["signingKey"],
                public_key=doc["environments"][name]["publicKey"],
            )
            for name, env in opened.environments.items()
        }
        return Account(live=tenants["live"], test=tenants["test"])

    return make


@pytest.fixture(scope="module")
def acme(new_account: Callable[[], Account]) -> Account:
    return new_account()


@pytest.fixture(scope="module")
def globex(new_account: Callable[[], Account]) -> Account:
    return new_account()


class Licenses:
    """Licenses of one tenant, made through the ledger's commands."""

    def __init__(self, ledger: LedgerApplication, config: Config, tenant: Tenant) -> None:
        self.ledger = ledger
        self.pepper = config.pepper
        self.tenant = tenant

    def issue(self, policy: PolicySettings | None = None, **fields: Any) -> IssuedKey:
        return issue(self.ledger, self.pepper, self.tenant.tenant_id, policy=policy, **fields)


@pytest.fixture(scope="module")
def licenses(ledger: LedgerApplication, config: Config, acme: Account) -> Licenses:
    """Licenses of acme's live environment."""
    return Licenses(ledger, config, acme.live)


@pytest.fixture(scope="module")
def validation_events_flushed(client: CheckedClient, ledger: LedgerApplication) -> Iterator[None]:
    """For modules that validate: append the queued validation events while the
    ledger's pool is still open (`pytestmark = pytest.mark.usefixtures(...)`)."""
    yield
    close_all()
