"""`/entitlements` (API.md §4)."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from api.config import Config
from ledger.application import LedgerApplication
from tests.integration.api.catalogue import ENTITLEMENTS
from tests.integration.api.catalogue import issues
from tests.integration.api.catalogue import new_code
from tests.integration.api.catalogue import new_entitlement
from tests.integration.api.catalogue import scoped_key
from tests.integration.api.conftest import Account
from tests.integration.api.conftest import CheckedClient


def test_entitlement_lifecycle(client: CheckedClient, acme: Account) -> None:
    key = acme.live.api_key
    code = new_code()
    entitlement = new_entitlement(client, key, code=code, description="Pro features")
    assert entitlement["code"] == code
    assert entitlement["description"] == "Pro features"
    assert entitlement["metadata"] == {}
    assert entitlement["createdAt"].endswith("Z")
    url = f"{ENTITLEMENTS}/{entitlement['id']}"
    assert client.get(url, key=key).json["data"] == entitlement
    patched = client.patch(
        url, key=key, json={"name": "Pro", "description": None, "metadata": {"a": 1}}
    )
    assert patched.status_code == 200, patched.text
    data = patched.json["data"]
    assert (data["name"], data["description"], data["metadata"]) == ("Pro", None, {"a": 1})
    assert data["code"] == code
    assert client.get(url, key=key).json["data"] == data
    assert client.delete(url, key=key).status_code == 204
    assert client.get(url, key=key).status_code == 404
    listed = client.get(ENTITLEMENTS, key=key, params={"limit": 100})
    assert entitlement["id"] not in [e["id"] for e in listed.json["data"]]


def test_list_is_ordered_and_paginated(client: CheckedClient, new_account: Any) -> None:
    key = new_account().live.api_key
    ids = [new_entitlement(client, key)["id"] for _ in range(3)]
    first = client.get(ENTITLEMENTS, key=key, params={"limit": 2})
    assert first.status_code == 200, first.text
    assert first.json["pagination"] == {"nextCursor": ids[1], "hasMore": True}
    second = client.get(ENTITLEMENTS, key=key, params={"limit": 2, "cursor": ids[1]})
    assert [e["id"] for e in first.json["data"] + second.json["data"]] == ids
    assert second.json["pagination"] == {"nextCursor": None, "hasMore": False}


def test_a_duplicate_code_is_a_conflict(client: CheckedClient, acme: Account) -> None:
    key = acme.live.api_key
    taken = new_entitlement(client, key)
    other = new_entitlement(client, key)
    duplicate = client.post(ENTITLEMENTS, key=key, json={"code": taken["code"], "name": "Dup"})
    assert duplicate.status_code == 409, duplicate.text
    assert duplicate.json["code"] == "CONFLICT"
    assert duplicate.json["details"] == {"field": "code"}
    renamed = client.patch(f"{ENTITLEMENTS}/{other['id']}", key=key, json={"code": taken["code"]})
    assert renamed.status_code == 409, renamed.text
    assert client.get(f"{ENTITLEMENTS}/{other['id']}", key=key).json["data"] == other


def test_codes_are_unique_per_environment_only(
    client: CheckedClient, acme: Account, globex: Account
) -> None:
    code = new_entitlement(client, acme.live.api_key)["code"]
    for key in (acme.test.api_key, globex.live.api_key):
        assert new_entitlement(client, key, code=code)["code"] == code


def test_a_deleted_entitlement_frees_its_code(client: CheckedClient, acme: Account) -> None:
    key = acme.live.api_key
    entitlement = new_entitlement(client, key)
    url = f"{ENTITLEMENTS}/{entitlement['id']}"
    assert client.delete(url, key=key).status_code == 204
    for result in (client.patch(url, key=key, json={"name": "back"}), client.delete(url, key=key)):
        assert result.status_code == 404, result.text
        assert result.json["code"] == "NOT_FOUND"
    again = new_entitlement(client, key, code=entitlement["code"])
    assert again["id"] != entitlement["id"]


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"code": "Pro"}, ["code"]),
        ({"code": "has space"}, ["code"]),
        ({"code": ""}, ["code"]),
        ({"code": "x" * 101}, ["code"]),
        ({"code": 7}, ["code"]),
        ({"name": ""}, ["name"]),
        ({"name": "x" * 256}, ["name"]),
        ({"name": None}, ["name"]),
        ({"description": "x" * 1001}, ["description"]),
        ({"description": 3}, ["description"]),
        ({"metadata": "text"}, ["metadata"]),
        ({"metadata": {f"k{i}": i for i in range(65)}}, ["metadata"]),
        ({"feature": True}, ["feature"]),
    ],
)
def test_create_refuses_an_invalid_field(
    client: CheckedClient, acme: Account, body: dict[str, Any], path: list[str]
) -> None:
    full = {"code": new_code(), "name": "Feature", **body}
    result = client.post(ENTITLEMENTS, key=acme.live.api_key, json=full)
    assert issues(result) == [path]


def test_create_lists_every_missing_required_field(client: CheckedClient, acme: Account) -> None:
    result = client.post(ENTITLEMENTS, key=acme.live.api_key, json={"description": "d"})
    assert sorted(issues(result)) == [["code"], ["name"]]


@pytest.mark.parametrize(
    ("body", "paths"),
    [
        ({"code": "UPPER"}, [["code"]]),
        ({"name": 1, "extra": 2}, [["extra"], ["name"]]),
        ({"id": "00000000-0000-0000-0000-000000000000"}, [["id"]]),
    ],
)
def test_patch_refuses_an_invalid_field(
    client: CheckedClient, acme: Account, body: dict[str, Any], paths: list[list[str]]
) -> None:
    entitlement = new_entitlement(client, acme.live.api_key)
    url = f"{ENTITLEMENTS}/{entitlement['id']}"
    assert sorted(issues(client.patch(url, key=acme.live.api_key, json=body))) == paths
    assert client.get(url, key=acme.live.api_key).json["data"] == entitlement


def test_missing_or_unknown_keys_are_401(client: CheckedClient, acme: Account) -> None:
    entitlement = new_entitlement(client, acme.live.api_key)
    url = f"{ENTITLEMENTS}/{entitlement['id']}"
    for key in (None, "lk_test_" + secrets.token_urlsafe(32)):
        for method, path in (("GET", ENTITLEMENTS), ("POST", ENTITLEMENTS), ("GET", url),
                             ("PATCH", url), ("DELETE", url)):  # fmt: skip
            result = client.request(method, path, key=key, json={"name": "x"})
            assert result.status_code == 401, (method, path, result.text)
            assert result.json["code"] == "UNAUTHORIZED"
    assert client.get(url, key=acme.live.api_key).json["data"] == entitlement


def test_scopes_are_enforced(
    client: CheckedClient, ledger: LedgerApplication, config: Config, acme: Account
) -> None:
    entitlement = new_entitlement(client, acme.live.api_key)
    url = f"{ENTITLEMENTS}/{entitlement['id']}"
    reader = scoped_key(ledger, config, acme.live, ["entitlements:read"])
    unrelated = scoped_key(ledger, config, acme.live, ["policies:write", "policies:read"])
    assert client.get(url, key=reader).status_code == 200
    assert client.get(ENTITLEMENTS, key=reader).status_code == 200
    refused = [
        client.post(ENTITLEMENTS, key=reader, json={"code": new_code(), "name": "E"}),
        client.patch(url, key=reader, json={"name": "x"}),
        client.delete(url, key=reader),
        client.get(url, key=unrelated),
        client.get(ENTITLEMENTS, key=unrelated),
    ]
    for result in refused:
        assert result.status_code == 403, result.text
        assert result.json["code"] == "FORBIDDEN"
    assert client.get(url, key=acme.live.api_key).json["data"] == entitlement
    writer = scoped_key(ledger, config, acme.live, ["entitlements:write"])
    assert (
        client.post(ENTITLEMENTS, key=writer, json={"code": new_code(), "name": "W"}).status_code
        == 201
    )


def test_another_tenants_entitlement_is_not_found_and_unchanged(
    client: CheckedClient, acme: Account, globex: Account
) -> None:
    owner = acme.live.api_key
    entitlement = new_entitlement(client, owner)
    url = f"{ENTITLEMENTS}/{entitlement['id']}"
    for intruder in (globex.live.api_key, acme.test.api_key):
        attempts: list[tuple[str, Any]] = [("GET", None), ("PATCH", {"name": "pwned"}),
                                           ("DELETE", None)]  # fmt: skip
        for method, body in attempts:
            result = client.request(method, url, key=intruder, json=body)
            assert result.status_code == 404, (method, result.text)
            assert result.json["code"] == "NOT_FOUND"
        listed = client.get(ENTITLEMENTS, key=intruder, params={"limit": 100})
        assert entitlement["id"] not in [e["id"] for e in listed.json["data"]]
        assert client.get(url, key=owner).json["data"] == entitlement


def test_idempotency_key_replays_the_create_and_refuses_reuse(
    client: CheckedClient, new_account: Any
) -> None:
    key = new_account().live.api_key
    headers = {"Idempotency-Key": "ent-" + secrets.token_hex(8)}
    body = {"code": new_code(), "name": "Once"}
    first = client.post(ENTITLEMENTS, key=key, json=body, headers=headers)
    again = client.post(ENTITLEMENTS, key=key, json=body, headers=headers)
    assert first.status_code == again.status_code == 201, first.text
    assert again.content == first.content
    assert again.headers.get("Idempotent-Replayed") == "true"
    reused = client.post(ENTITLEMENTS, key=key, json={**body, "name": "Twice"}, headers=headers)
    assert reused.status_code == 409, reused.text
    assert reused.json["code"] == "IDEMPOTENCY_KEY_REUSED"
    listed = client.get(ENTITLEMENTS, key=key)
    assert [e["id"] for e in listed.json["data"]] == [first.json["data"]["id"]]


def test_a_refused_create_is_replayed_too(client: CheckedClient, acme: Account) -> None:
    key = acme.live.api_key
    taken = new_entitlement(client, key)["code"]
    headers = {"Idempotency-Key": "dup-" + secrets.token_hex(8)}
    body = {"code": taken, "name": "Dup"}
    first = client.post(ENTITLEMENTS, key=key, json=body, headers=headers)
    again = client.post(ENTITLEMENTS, key=key, json=body, headers=headers)
    assert first.status_code == again.status_code == 409
    assert again.content == first.content
