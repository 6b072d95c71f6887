"""`/api-keys`: create (shown once), list, revoke; scopes, expiry, isolation (API.md §3)."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from api.app import create_app
from api.config import Config
from api.services import Services
from ledger.application import LedgerApplication
from projections.wire import iso_ms
from tests.integration.api.conftest import Account
from tests.integration.api.conftest import CheckedClient

KEYS = "/api/v1/api-keys"
PRODUCTS = "/api/v1/products"


def create_key(client: CheckedClient, key: str, **body: Any) -> dict[str, Any]:
    body.setdefault("name", "key-" + secrets.token_hex(3))
    created = client.post(KEYS, key=key, json=body)
    assert created.status_code == 201, created.text
    document: dict[str, Any] = created.json["data"]
    return document


def listed_ids(client: CheckedClient, key: str) -> list[str]:
    listed = client.get(KEYS, key=key, params={"limit": 100})
    assert listed.status_code == 200, listed.text
    return [item["id"] for item in listed.json["data"]]


def error_code(result: Any) -> str:
    code: str = result.json["code"]
    return code


def test_created_key_is_shown_once_and_works(client: CheckedClient, acme: Account) -> None:
    created = client.post(KEYS, key=acme.live.api_key, json={"name": "CI deploys"})

    assert created.status_code == 201, created.text
    assert created.headers["Cache-Control"] == "no-store"
    key = created.json["data"]
    assert key["key"].startswith("lk_live_")
    assert key["prefix"] == key["key"][:12]
    assert key["scopes"] == []
    assert key["expiresAt"] is None
    assert key["createdAt"].endswith("Z")
    assert client.get(PRODUCTS, key=key["key"]).status_code == 200
    listed = client.get(KEYS, key=acme.live.api_key, params={"limit": 100})
    entry = next(item for item in listed.json["data"] if item["id"] == key["id"])
    assert entry == {k: v for k, v in key.items() if k != "key"}
    assert key["key"] not in listed.text


def test_scopes_are_kept_and_enforced(client: CheckedClient, acme: Account) -> None:
    reader = create_key(client, acme.live.api_key, scopes=["products:read"])

    assert reader["scopes"] == ["products:read"]
    assert client.get(PRODUCTS, key=reader["key"]).status_code == 200
    refused = client.post(PRODUCTS, key=reader["key"], json={"name": "X", "code": "x"})
    assert refused.status_code == 403
    assert error_code(refused) == "FORBIDDEN"
    # API.md has no api_keys:read: listing keys needs api_keys:write too.
    assert client.get(KEYS, key=reader["key"]).status_code == 403
    assert client.post(KEYS, key=reader["key"], json={"name": "n"}).status_code == 403


def test_scoped_key_cannot_create_a_more_powerful_key(client: CheckedClient, acme: Account) -> None:
    manager = create_key(client, acme.live.api_key, scopes=["api_keys:write", "products:read"])
    key = manager["key"]

    narrower = create_key(client, key, scopes=["products:read"])
    assert narrower["scopes"] == ["products:read"]
    same = create_key(client, key, scopes=["products:read", "api_keys:write"])
    assert sorted(same["scopes"]) == ["api_keys:write", "products:read"]
    for escalation in (["products:write"], ["products:read", "licenses:write"], []):
        refused = client.post(KEYS, key=key, json={"name": "n", "scopes": escalation})
        assert refused.status_code == 403, escalation
        assert error_code(refused) == "FORBIDDEN"
    without_scopes = client.post(KEYS, key=key, json={"name": "n"})  # = full access
    assert without_scopes.status_code == 403
    # A full-access key may grant anything, full access included.
    assert create_key(client, acme.live.api_key, scopes=["licenses:write"])["scopes"] == [
        "licenses:write"
    ]


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"scopes": []}, ["name"]),
        ({"name": ""}, ["name"]),
        ({"name": "n", "scopes": ["products:admin"]}, ["scopes", 0]),
        ({"name": "n", "scopes": "products:read"}, ["scopes"]),
        ({"name": "n", "expiresAt": "tomorrow"}, ["expiresAt"]),
        ({"name": "n", "expiresAt": "2020-01-01T00:00:00Z"}, ["expiresAt"]),
        ({"name": "n", "colour": "red"}, ["colour"]),
    ],
)
def test_invalid_create_is_a_validation_error(
    client: CheckedClient, acme: Account, body: dict[str, Any], path: list[Any]
) -> None:
    result = client.post(KEYS, key=acme.live.api_key, json=body)

    assert result.status_code == 400, result.text
    assert error_code(result) == "VALIDATION_ERROR"
    assert path in [issue["path"] for issue in result.json["details"]["issues"]]


def test_malformed_json_is_a_validation_error(client: CheckedClient, acme: Account) -> None:
    result = client.post(
        KEYS,
        key=acme.live.api_key,
        body=b'{"name": ',
        headers={"Content-Type": "application/json"},
    )

    assert result.status_code == 400
    assert error_code(result) == "VALIDATION_ERROR"


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer",
        "Basic dXNlcjpwYXNz",
        "Bearer lk_live_" + "0" * 43,
        "Bearer not-a-key",
    ],
)
def test_missing_or_unknown_key_is_unauthorized(
    client: CheckedClient, authorization: str | None
) -> None:
    result = client.get(KEYS, auth=authorization)

    assert result.status_code == 401
    assert error_code(result) == "UNAUTHORIZED"


def test_revoked_key_is_unauthorized_at_once(
    client: CheckedClient, new_account: Callable[[], Account]
) -> None:
    account = new_account()
    doomed = create_key(client, account.live.api_key)
    assert client.get(PRODUCTS, key=doomed["key"]).status_code == 200

    revoked = client.delete(f"{KEYS}/{doomed['id']}", key=account.live.api_key)

    assert revoked.status_code == 204
    after = client.get(PRODUCTS, key=doomed["key"])
    assert after.status_code == 401
    assert error_code(after) == "UNAUTHORIZED"
    assert doomed["id"] not in listed_ids(client, account.live.api_key)
    again = client.delete(f"{KEYS}/{doomed['id']}", key=account.live.api_key)
    assert again.status_code == 404
    assert error_code(again) == "NOT_FOUND"


def test_a_key_may_revoke_itself(client: CheckedClient, acme: Account) -> None:
    itself = create_key(client, acme.live.api_key)

    assert client.delete(f"{KEYS}/{itself['id']}", key=itself["key"]).status_code == 204
    assert client.get(KEYS, key=itself["key"]).status_code == 401


def test_unknown_key_id_is_not_found(client: CheckedClient, acme: Account) -> None:
    result = client.delete(f"{KEYS}/{uuid.uuid4()}", key=acme.live.api_key)

    assert result.status_code == 404


def test_expired_key_is_unauthorized(
    client: CheckedClient, acme: Account, ledger: LedgerApplication, config: Config
) -> None:
    expires_at = datetime.now(UTC) + timedelta(minutes=5)
    expiring = create_key(
        client, acme.live.api_key, expiresAt=expires_at.isoformat().replace("+00:00", "Z")
    )
    assert expiring["expiresAt"] == iso_ms(expires_at)
    assert client.get(PRODUCTS, key=expiring["key"]).status_code == 200

    later = expires_at + timedelta(seconds=1)
    after_expiry = CheckedClient(
        create_app(config, services=Services(ledger, config, clock=lambda: later))
    )

    result = after_expiry.get(PRODUCTS, key=expiring["key"])
    assert result.status_code == 401
    assert error_code(result) == "UNAUTHORIZED"
    # Keys without an expiry are unaffected by the clock.
    assert after_expiry.get(PRODUCTS, key=acme.live.api_key).status_code == 200
    # Expired keys stay listed (so they can be seen and revoked) until revoked.
    assert expiring["id"] in listed_ids(after_expiry, acme.live.api_key)


def test_another_tenants_key_cannot_be_revoked(
    client: CheckedClient, acme: Account, globex: Account
) -> None:
    acmes = create_key(client, acme.live.api_key)

    for intruder in (globex.live.api_key, globex.test.api_key, acme.test.api_key):
        refused = client.delete(f"{KEYS}/{acmes['id']}", key=intruder)
        assert refused.status_code == 404
        assert error_code(refused) == "NOT_FOUND"
    assert client.get(PRODUCTS, key=acmes["key"]).status_code == 200
    assert acmes["id"] in listed_ids(client, acme.live.api_key)
    assert acmes["id"] not in listed_ids(client, globex.live.api_key)


def test_test_keys_never_list_live_keys(
    client: CheckedClient, new_account: Callable[[], Account]
) -> None:
    account = new_account()
    live = create_key(client, account.live.api_key)
    test = create_key(client, account.test.api_key)

    assert test["key"].startswith("lk_test_")
    test_listing = client.get(KEYS, key=account.test.api_key, params={"limit": 100}).json["data"]
    live_listing = client.get(KEYS, key=account.live.api_key, params={"limit": 100}).json["data"]
    assert live["id"] not in [k["id"] for k in test_listing]
    assert test["id"] not in [k["id"] for k in live_listing]
    assert all(k["prefix"].startswith("lk_test_") for k in test_listing)
    assert all(k["prefix"].startswith("lk_live_") for k in live_listing)
    # A test key works only in the test environment.
    assert client.delete(f"{KEYS}/{live['id']}", key=account.test.api_key).status_code == 404


def test_list_pages_in_creation_order(
    client: CheckedClient, new_account: Callable[[], Account]
) -> None:
    account = new_account()
    key = account.live.api_key
    made = [create_key(client, key)["id"] for _ in range(3)]
    everything = listed_ids(client, key)  # the account's default key first, then ours
    assert everything[1:] == made

    first = client.get(KEYS, key=key, params={"limit": 2}).json
    assert first["pagination"] == {"nextCursor": everything[1], "hasMore": True}
    second = client.get(KEYS, key=key, params={"limit": 2, "cursor": everything[1]}).json
    assert [k["id"] for k in second["data"]] == everything[2:]
    assert second["pagination"] == {"nextCursor": None, "hasMore": False}
    # A cursor revoked between pages still continues the walk.
    assert client.delete(f"{KEYS}/{everything[1]}", key=key).status_code == 204
    resumed = client.get(KEYS, key=key, params={"limit": 2, "cursor": everything[1]}).json
    assert [k["id"] for k in resumed["data"]] == everything[2:]
    unknown = client.get(KEYS, key=key, params={"cursor": str(uuid.uuid4())})
    assert unknown.status_code == 400
    assert client.get(KEYS, key=key, params={"limit": 0}).status_code == 400


def test_idempotent_create_replays_the_same_key(
    client: CheckedClient, new_account: Callable[[], Account], config: Config
) -> None:
    account = new_account()
    key = account.live.api_key
    before = len(listed_ids(client, key))
    headers = {"Idempotency-Key": "create-" + secrets.token_hex(4)}
    body = {"name": "deploy", "scopes": ["products:read"]}

    first = client.post(KEYS, key=key, json=body, headers=headers)
    replay = client.post(KEYS, key=key, json=body, headers=headers)

    assert first.status_code == replay.status_code == 201
    assert replay.content == first.content
    assert replay.headers["Idempotent-Replayed"] == "true"
    # The stored response (needed for the replay) is encrypted: the key is not in it.
    assert config.database_url is not None
    with psycopg.connect(config.database_url) as owner:
        stored = owner.execute("SELECT body FROM idempotency_keys").fetchall()
    secret = first.json["data"]["key"].encode()
    assert stored
    assert not any(secret in bytes(row[0] or b"") for row in stored)
    assert len(listed_ids(client, key)) == before + 1
    reused = client.post(KEYS, key=key, json={**body, "name": "other"}, headers=headers)
    assert reused.status_code == 409
    assert error_code(reused) == "IDEMPOTENCY_KEY_REUSED"
    assert len(listed_ids(client, key)) == before + 1
