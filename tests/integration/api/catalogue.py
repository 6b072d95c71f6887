"""Helpers the policy and entitlement API tests share."""

from __future__ import annotations

import secrets
from datetime import UTC
from datetime import datetime
from typing import Any
from uuid import UUID
from uuid import uuid4

from api.config import Config
from ledger.application import LedgerApplication
from ledger.commands.api_keys import create_api_key
from ledger.commands.base import Actor
from ledger.commands.base import CommandContext
from tests.integration.api.conftest import CheckedClient
from tests.integration.api.conftest import Tenant

PRODUCTS = "/api/v1/products"
POLICIES = "/api/v1/policies"
ENTITLEMENTS = "/api/v1/entitlements"


def context(tenant: Tenant) -> CommandContext:
    return CommandContext(UUID(tenant.tenant_id), Actor("operator"), datetime.now(UTC))


def scoped_key(ledger: LedgerApplication, config: Config, tenant: Tenant, scopes: list[str]) -> str:
    """A new API key of `tenant` limited to `scopes`."""
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


def created(result: Any) -> dict[str, Any]:
    assert result.status_code == 201, result.text
    document: dict[str, Any] = result.json["data"]
    return document


def new_product(client: CheckedClient, key: str) -> str:
    body = {"name": "Product", "code": "p-" + secrets.token_hex(4)}
    return str(created(client.post(PRODUCTS, key=key, json=body))["id"])


def new_code() -> str:
    return "feat-" + secrets.token_hex(4)


def new_entitlement(client: CheckedClient, key: str, **fields: Any) -> dict[str, Any]:
    body = {"code": new_code(), "name": "Feature", **fields}
    return created(client.post(ENTITLEMENTS, key=key, json=body))


def new_policy(client: CheckedClient, key: str, product_id: str, **fields: Any) -> dict[str, Any]:
    body = {"productId": product_id, "name": "Policy", **fields}
    return created(client.post(POLICIES, key=key, json=body))


def issues(result: Any) -> list[list[str | int]]:
    """The distinct paths of a 400's `details.issues`, sorted (a field may break two rules)."""
    assert result.status_code == 400, result.text
    assert result.json["code"] == "VALIDATION_ERROR"
    paths = {tuple(issue["path"]) for issue in result.json["details"]["issues"]}
    return [list(path) for path in sorted(paths, key=str)]
