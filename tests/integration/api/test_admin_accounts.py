"""`POST /admin/accounts`: the operator opens accounts; the two credentials never mix."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from api.app import create_app
from api.config import Config
from api.services import Services
from ledger.application import LedgerApplication
from tests.integration.api.conftest import ADMIN_TOKEN
from tests.integration.api.conftest import Account
from tests.integration.api.conftest import CheckedClient

ACCOUNTS = "/api/v1/admin/accounts"
OPERATOR = f"Bearer {ADMIN_TOKEN}"


def open_account(client: CheckedClient, name: str = "Initech") -> dict[str, Any]:
    created = client.post(ACCOUNTS, auth=OPERATOR, json={"name": name})
    assert created.status_code == 201, created.text
    document: dict[str, Any] = created.json
    return document


def test_operator_opens_an_account_whose_keys_work(client: CheckedClient) -> None:
    created = client.post(ACCOUNTS, auth=OPERATOR, json={"name": "Initech"})

    assert created.status_code == 201, created.text
    assert created.headers["Cache-Control"] == "no-store"
    document = created.json
    assert set(document) == {"accountId", "environments"}
    assert set(document["environments"]) == {"live", "test"}
    for name, env in document["environments"].items():
        assert env["apiKey"].startswith(f"lk_{name}_")
        assert env["publicKey"].startswith("MCowBQYDK2VwAyEA")
        assert client.get("/api/v1/products", key=env["apiKey"]).status_code == 200
    live, test = document["environments"]["live"], document["environments"]["test"]
    assert live["signingKey"] != test["signingKey"]
    # The new account's keys are full access, API-key management included.
    assert client.get("/api/v1/api-keys", key=live["apiKey"]).status_code == 200


def test_accounts_are_distinct(client: CheckedClient) -> None:
    first, second = open_account(client, "one"), open_account(client, "two")

    assert first["accountId"] != second["accountId"]
    assert first["environments"]["live"]["apiKey"] != second["environments"]["live"]["apiKey"]


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": "x" * 256}, {"name": "n", "plan": 1}])
def test_invalid_body_is_a_validation_error(client: CheckedClient, body: dict[str, Any]) -> None:
    result = client.post(ACCOUNTS, auth=OPERATOR, json=body)

    assert result.status_code == 400, result.text
    assert result.json["code"] == "VALIDATION_ERROR"


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", f"Basic {ADMIN_TOKEN}", f"Bearer {ADMIN_TOKEN}x"],
)
def test_without_the_operator_token_is_unauthorized(
    client: CheckedClient, authorization: str | None
) -> None:
    result = client.post(ACCOUNTS, auth=authorization, json={"name": "n"})

    assert result.status_code == 401
    assert result.json["code"] == "UNAUTHORIZED"


def test_tenant_keys_never_reach_the_admin_api(client: CheckedClient, acme: Account) -> None:
    for key in (acme.live.api_key, acme.test.api_key):
        result = client.post(ACCOUNTS, key=key, json={"name": "n"})
        assert result.status_code == 401
        assert result.json["code"] == "UNAUTHORIZED"


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/v1/products"), ("GET", "/api/v1/api-keys"), ("POST", "/api/v1/api-keys")],
)
def test_operator_token_never_reaches_tenant_data(
    client: CheckedClient, method: str, path: str
) -> None:
    result = client.request(method, path, auth=OPERATOR, json={"name": "n"})

    assert result.status_code == 401
    assert result.json["code"] == "UNAUTHORIZED"


def test_admin_api_is_not_found_when_disabled(
    config: Config, ledger: LedgerApplication, acme: Account
) -> None:
    disabled = dataclasses.replace(config, admin_token=None)
    client = CheckedClient(create_app(disabled, services=Services(ledger, disabled)))

    for authorization in (OPERATOR, None, f"Bearer {acme.live.api_key}"):
        result = client.post(ACCOUNTS, auth=authorization, json={"name": "n"})
        assert result.status_code == 404
        assert result.json["code"] == "NOT_FOUND"


def test_idempotent_open_replays_the_same_account(client: CheckedClient) -> None:
    headers = {"Idempotency-Key": "open-initech"}

    first = client.post(ACCOUNTS, auth=OPERATOR, json={"name": "Initech"}, headers=headers)
    replay = client.post(ACCOUNTS, auth=OPERATOR, json={"name": "Initech"}, headers=headers)

    assert first.status_code == replay.status_code == 201
    assert replay.content == first.content
    reused = client.post(ACCOUNTS, auth=OPERATOR, json={"name": "Other"}, headers=headers)
    assert reused.status_code == 409
    assert reused.json["code"] == "IDEMPOTENCY_KEY_REUSED"
