"""Contract tests over EVERY route the app serves (enumerated from its route table).

- /openapi.json is valid OpenAPI 3.1 and documents every served route and method;
- every authenticated operation answers 401 with no, an unknown, or a revoked key;
- every scoped operation answers 403 to a key that lacks its scope;
- every operation on an id answers 404 to another tenant's key and to the same account's
  other environment, and changes nothing (checked by reading the owner's data after);
- every POST replays its first response for the same Idempotency-Key and body, and
  refuses the key with another body.

A new endpoint is covered by adding it to the app; when it takes a required body, these
tests ask for an example in `EXAMPLE_BODIES`.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID
from uuid import uuid4

import falcon.inspect
import pytest
from openapi_spec_validator import validate

from api.app import create_app
from api.auth import Auth
from api.config import Config
from api.openapi import build_document
from api.operations import Operation
from ledger.application import LedgerApplication
from ledger.commands import catalogue
from ledger.commands import licenses
from ledger.commands.api_keys import create_api_key
from ledger.commands.api_keys import revoke_api_key
from ledger.commands.base import Actor
from ledger.commands.base import CommandContext
from ledger.commands.base import change
from ledger.commands.webhooks import DestinationPolicy
from ledger.commands.webhooks import create_webhook_endpoint
from ledger.domain.codes import Scope
from ledger.domain.license import License
from tests.integration.api.conftest import Account
from tests.integration.api.conftest import CheckedClient
from tests.integration.api.conftest import Tenant


@dataclass(frozen=True)
class Op:
    method: str
    path: str  # OpenAPI form: /api/v1/products/{product_id}
    auth: Auth
    spec: Operation

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


def _operations() -> list[Op]:
    # The route table needs no database: the ledger application is built lazily.
    config = Config(
        database_url="postgresql://unused@127.0.0.1:1/unused",
        redis_url=None,
        data_dir=Path("/nonexistent"),
        master_key=bytes(32),
    )
    app = create_app(config)
    ops = []
    for route in app.routes.routes:
        for method, spec in route.operations():
            assert spec is not None, f"{method} {route.template} has no @operation"
            ops.append(Op(method, route.path, getattr(route.resource, "auth", Auth.API_KEY), spec))
    return ops


OPERATIONS = _operations()
AUTHENTICATED = [op for op in OPERATIONS if op.auth is not Auth.NONE]
API_KEY_OPS = [op for op in AUTHENTICATED if op.auth is not Auth.OPERATOR]
SCOPED = [op for op in OPERATIONS if op.spec.scope is not None]
ON_AN_ID = [op for op in API_KEY_OPS if "{" in op.path]
POSTS = [op for op in API_KEY_OPS if op.method == "POST"]

# A valid body for each operation whose body is required (the world's ids are filled in).
EXAMPLE_BODIES: dict[str, Callable[[dict[str, str]], Any]] = {
    "POST /api/v1/products": lambda w: {"name": "P", "code": "p-" + secrets.token_hex(4)},
    "PATCH /api/v1/products/{product_id}": lambda w: {"name": "renamed"},
    "POST /api/v1/policies": lambda w: {"productId": w["product_id"], "name": "Pol"},
    "PATCH /api/v1/policies/{policy_id}": lambda w: {"name": "renamed"},
    "POST /api/v1/policies/{policy_id}/entitlements": lambda w: {"codes": [w["code"]]},
    "DELETE /api/v1/policies/{policy_id}/entitlements": lambda w: {"codes": [w["code"]]},
    "POST /api/v1/entitlements": lambda w: {"code": "e-" + secrets.token_hex(4), "name": "E"},
    "PATCH /api/v1/entitlements/{entitlement_id}": lambda w: {"name": "renamed"},
    "POST /api/v1/licenses": lambda w: {"productId": w["product_id"], "policyId": w["policy_id"]},
    "PATCH /api/v1/licenses/{license_id}": lambda w: {"name": "renamed"},
    "POST /api/v1/licenses/{license_id}/usage": lambda w: {"increment": 1},
    "POST /api/v1/licenses/{license_id}/entitlements": lambda w: {"codes": [w["code"]]},
    "DELETE /api/v1/licenses/{license_id}/entitlements": lambda w: {"codes": [w["code"]]},
    "POST /api/v1/licenses/{license_id}/validate": lambda w: {"fingerprint": "fp-0000001"},
    "POST /api/v1/licenses/validate-key": lambda w: {"key": w["key"]},
    "POST /api/v1/api-keys": lambda w: {"name": "k", "scopes": ["products:read"]},
    "POST /api/v1/admin/accounts": lambda w: {"name": "acct"},
    "POST /api/v1/machines": lambda w: {
        "fingerprint": "fp-" + secrets.token_hex(6),
        "licenseId": w["license_id"],
    },
    "PATCH /api/v1/machines/{machine_id}": lambda w: {"name": "renamed"},
    # Not resolvable here, so accepted (names are checked again before each delivery).
    "POST /api/v1/webhooks": lambda w: {"url": "https://hooks.example.com/in", "events": ["*"]},
    "PATCH /api/v1/webhooks/{webhook_id}": lambda w: {"description": "renamed"},
    "POST /api/v1/webhooks/{webhook_id}/recover": lambda w: {"since": "2026-01-01T00:00:00Z"},
}


def body_for(op: Op, world: dict[str, str]) -> Any:
    example = EXAMPLE_BODIES.get(op.id)
    if example is not None:
        return example(world)
    if op.spec.body is not None and op.spec.body_required:
        pytest.fail(f"add an example body for {op.id} to EXAMPLE_BODIES")
    return None


def url_for(op: Op, world: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: world.get(m.group(1), str(uuid4())), op.path)


def context(tenant: Tenant) -> CommandContext:
    return CommandContext(UUID(tenant.tenant_id), Actor("operator"), datetime.now(UTC))


def build_world(ledger: LedgerApplication, config: Config, tenant: Tenant) -> dict[str, str]:
    """One of each resource in `tenant`: the ids every path parameter can name."""
    ctx = context(tenant)
    product = catalogue.create_product(
        ledger, ctx, product_id=uuid4(), name="World", code="w-" + secrets.token_hex(4)
    )
    entitlement = catalogue.create_entitlement(
        ledger, ctx, entitlement_id=uuid4(), code="feat-" + secrets.token_hex(3), name="F"
    )
    policy = catalogue.create_policy(
        ledger, ctx, policy_id=uuid4(), product_id=product.id, name="World policy"
    )
    issued = licenses.issue_license(
        ledger,
        ctx,
        license_id=uuid4(),
        product_id=product.id,
        policy_id=policy.id,
        pepper=config.pepper,
    )
    machine_id = uuid4()
    change(
        ledger,
        ctx,
        License,
        issued.license.id,
        lambda lic: lic.activate_machine(
            machine_id=machine_id, fingerprint="fp-world-1", max_machines=None, at=ctx.at
        ),
    )
    api_key = create_api_key(
        ledger,
        ctx,
        api_key_id=uuid4(),
        environment=tenant.environment,
        name="world key",
        scopes=["products:read"],
        expires_at=None,
        pepper=config.pepper,
    )
    webhook = create_webhook_endpoint(
        ledger,
        ctx,
        endpoint_id=uuid4(),
        url="https://hooks.example.com/world",
        events=["*"],
        master_key=config.master_key,
        destinations=DestinationPolicy(),
    )
    return {
        "webhook_id": str(webhook.endpoint.id),
        "product_id": str(product.id),
        "policy_id": str(policy.id),
        "entitlement_id": str(entitlement.id),
        "code": entitlement.code,
        "license_id": str(issued.license.id),
        "key": issued.key,
        "machine_id": str(machine_id),
        "api_key_id": str(api_key.api_key.id),
    }


@pytest.fixture(scope="module")
def world(ledger: LedgerApplication, config: Config, acme: Account) -> dict[str, str]:
    return build_world(ledger, config, acme.live)


def snapshot(client: CheckedClient, tenant: Tenant, world: dict[str, str]) -> list[Any]:
    """Everything of the owner's that an operation could have changed, read as the owner."""
    reads = [
        f"/api/v1/products/{world['product_id']}",
        f"/api/v1/policies/{world['policy_id']}",
        f"/api/v1/entitlements/{world['entitlement_id']}",
        f"/api/v1/licenses/{world['license_id']}",
        f"/api/v1/machines/{world['machine_id']}",
        "/api/v1/api-keys",
        f"/api/v1/webhooks/{world['webhook_id']}",
    ]
    taken = []
    for path in reads:
        result = client.get(path, key=tenant.api_key)
        taken.append((path, result.status_code, result.json.get("data")))
    return taken


def scoped_key(ledger: LedgerApplication, config: Config, tenant: Tenant, scopes: list[str]) -> str:
    return create_api_key(
        ledger,
        context(tenant),
        api_key_id=uuid4(),
        environment=tenant.environment,
        name="scoped",
        scopes=scopes,
        expires_at=None,
        pepper=config.pepper,
    ).key


def test_openapi_document_is_valid_openapi_3_1(client: CheckedClient) -> None:
    result = client.get("/api/v1/openapi.json")
    assert result.status_code == 200
    validate(result.json)
    assert result.json == build_document(client.routes)


def test_every_served_route_is_in_the_route_table(client: CheckedClient) -> None:
    served = {
        (method.method, route.path)
        for route in falcon.inspect.inspect_app(client.app).routes
        for method in route.methods
        if not method.internal
    }
    documented = {
        (method, route.template)
        for route in client.routes.routes
        for method, _ in route.operations()
    }
    # /metrics is Prometheus text at the root, deliberately outside /api/v1 and OpenAPI.
    assert served - {("GET", "/metrics")} == documented


@pytest.mark.parametrize("op", AUTHENTICATED, ids=lambda op: op.id)
def test_missing_unknown_or_revoked_credentials_are_401(
    op: Op, client: CheckedClient, ledger: LedgerApplication, config: Config, acme: Account
) -> None:
    revoked = create_api_key(
        ledger,
        context(acme.live),
        api_key_id=uuid4(),
        environment="live",
        name="to revoke",
        scopes=[],
        expires_at=None,
        pepper=config.pepper,
    )
    revoke_api_key(ledger, context(acme.live), revoked.api_key.id)
    url = url_for(op, {})
    for auth in (None, "Bearer lk_live_" + secrets.token_urlsafe(32), f"Bearer {revoked.key}",
                 "Basic dXNlcjpwYXNz", "Bearer"):  # fmt: skip
        result = client.request(op.method, url, auth=auth, json=None)
        assert result.status_code == 401, (op.id, auth, result.text)
        assert result.json["code"] == "UNAUTHORIZED"


@pytest.mark.parametrize("op", SCOPED, ids=lambda op: op.id)
def test_a_key_without_the_scope_is_403(
    op: Op, client: CheckedClient, ledger: LedgerApplication, config: Config, acme: Account
) -> None:
    assert op.spec.scope is not None
    other = next(str(s) for s in Scope if s != op.spec.scope and not str(s).endswith("write"))
    key = scoped_key(ledger, config, acme.live, [other])
    result = client.request(op.method, url_for(op, {}), key=key)
    assert result.status_code == 403, (op.id, result.text)
    assert result.json["code"] == "FORBIDDEN"


@pytest.mark.parametrize("op", ON_AN_ID, ids=lambda op: op.id)
def test_another_tenants_ids_are_404_and_nothing_changes(
    op: Op, client: CheckedClient, acme: Account, globex: Account, world: dict[str, str]
) -> None:
    before = snapshot(client, acme.live, world)
    for intruder in (globex.live, acme.test):
        result = client.request(
            op.method, url_for(op, world), key=intruder.api_key, json=body_for(op, world)
        )
        assert result.status_code == 404, (op.id, intruder.environment, result.text)
        assert result.json["code"] == "NOT_FOUND"
    assert snapshot(client, acme.live, world) == before


@pytest.fixture(scope="module")
def idempotency_world(
    ledger: LedgerApplication, config: Config, new_account: Callable[[], Account]
) -> tuple[Tenant, dict[str, str]]:
    tenant = new_account().live
    return tenant, build_world(ledger, config, tenant)


@pytest.mark.parametrize("op", POSTS, ids=lambda op: op.id)
def test_idempotency_key_replays_the_first_response_and_refuses_reuse(
    op: Op, client: CheckedClient, idempotency_world: tuple[Tenant, dict[str, str]]
) -> None:
    tenant, world = idempotency_world
    url = url_for(op, world)
    body = body_for(op, world)
    headers = {"Idempotency-Key": "idem-" + secrets.token_hex(8)}
    first = client.post(url, key=tenant.api_key, json=body, headers=headers)
    again = client.post(url, key=tenant.api_key, json=body, headers=headers)
    assert again.status_code == first.status_code, op.id
    assert again.content == first.content, op.id
    assert again.headers.get("Idempotent-Replayed") == "true"
    other = {"unexpected": "body"} if body is None else {**body, "metadata": {"x": 1}}
    reused = client.post(url, key=tenant.api_key, json=other, headers=headers)
    assert reused.status_code == 409, (op.id, reused.text)
    assert reused.json["code"] == "IDEMPOTENCY_KEY_REUSED"
