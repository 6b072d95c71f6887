"""`/policies` and `/policies/{id}/entitlements` (API.md §4)."""

from __future__ import annotations

import secrets
from typing import Any
from uuid import UUID
from uuid import uuid4

import pytest

from api.config import Config
from ledger.application import LedgerApplication
from ledger.commands import licenses
from ledger.domain.templates import DEFAULTS
from ledger.domain.templates import camel
from tests.integration.api.catalogue import POLICIES
from tests.integration.api.catalogue import context
from tests.integration.api.catalogue import issues
from tests.integration.api.catalogue import new_entitlement
from tests.integration.api.catalogue import new_policy
from tests.integration.api.catalogue import new_product
from tests.integration.api.catalogue import scoped_key
from tests.integration.api.conftest import Account
from tests.integration.api.conftest import CheckedClient

WIRE_DEFAULTS = {camel(name): value for name, value in DEFAULTS.items()}


@pytest.fixture(scope="module")
def product(client: CheckedClient, acme: Account) -> str:
    return new_product(client, acme.live.api_key)


def test_a_policy_without_template_has_the_documented_defaults(
    client: CheckedClient, acme: Account, product: str
) -> None:
    policy = new_policy(client, acme.live.api_key, product)
    assert {k: policy[k] for k in WIRE_DEFAULTS} == WIRE_DEFAULTS
    assert policy["maxMachines"] is None
    assert policy["expirationStrategy"] == "RESTRICT_ACCESS"
    assert policy["offlineMaxDays"] == 14
    assert policy["template"] is None
    assert policy["entitlements"] == []
    assert policy["metadata"] == {}
    assert policy["productId"] == product
    assert policy["createdAt"].endswith("Z")
    got = client.get(f"{POLICIES}/{policy['id']}", key=acme.live.api_key)
    assert got.status_code == 200
    assert got.json["data"] == policy


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("desktop_app", {"maxMachines": 2, "offlineAllowed": True, "offlineMaxDays": 14}),
        ("cli_tool", {"maxMachines": 3, "offlineAllowed": True, "offlineMaxDays": 7}),
        (
            "saas",
            {
                "maxMachines": None,
                "floating": True,
                "requireFingerprint": False,
                "offlineAllowed": False,
                "requireHeartbeat": True,
                "heartbeatIntervalMinutes": 1440,
                "durationDays": 30,
            },
        ),
        ("trial", {"maxMachines": 1, "offlineAllowed": False, "isTrial": True, "durationDays": 14}),
        ("custom", WIRE_DEFAULTS),
    ],
)
def test_a_template_fills_the_defaults(
    client: CheckedClient, acme: Account, product: str, template: str, expected: dict[str, Any]
) -> None:
    policy = new_policy(client, acme.live.api_key, product, template=template)
    assert policy["template"] == template
    assert {k: policy[k] for k in expected} == expected


def test_explicit_fields_win_over_the_template(
    client: CheckedClient, acme: Account, product: str
) -> None:
    policy = new_policy(
        client,
        acme.live.api_key,
        product,
        template="trial",
        maxMachines=5,
        durationDays=7,
        expirationStrategy="ALLOW_ACCESS",
        metadata={"tier": "gold"},
    )
    assert policy["maxMachines"] == 5
    assert policy["durationDays"] == 7
    assert policy["isTrial"] is True  # from the template
    assert policy["offlineAllowed"] is False  # from the template
    assert policy["expirationStrategy"] == "ALLOW_ACCESS"
    assert policy["metadata"] == {"tier": "gold"}


def test_patch_reapplies_a_template_except_fields_given_alongside(
    client: CheckedClient, acme: Account, product: str
) -> None:
    key = acme.live.api_key
    policy = new_policy(client, key, product, maxMachines=10, offlineMaxDays=30)
    url = f"{POLICIES}/{policy['id']}"
    patched = client.patch(url, key=key, json={"template": "cli_tool"})
    assert patched.status_code == 200, patched.text
    assert patched.json["data"]["template"] == "cli_tool"
    assert patched.json["data"]["maxMachines"] == 3
    assert patched.json["data"]["offlineMaxDays"] == 7
    again = client.patch(
        url, key=key, json={"template": "desktop_app", "offlineMaxDays": 21, "name": "Desk"}
    )
    assert again.status_code == 200, again.text
    data = again.json["data"]
    assert (data["maxMachines"], data["offlineMaxDays"], data["name"]) == (2, 21, "Desk")
    assert data["updatedAt"] >= policy["updatedAt"]
    assert client.get(url, key=key).json["data"] == data


def test_patch_changes_only_the_given_fields(
    client: CheckedClient, acme: Account, product: str
) -> None:
    key = acme.live.api_key
    policy = new_policy(client, key, product, template="desktop_app")
    url = f"{POLICIES}/{policy['id']}"
    patched = client.patch(url, key=key, json={"maxUses": 100, "floating": True})
    assert patched.status_code == 200, patched.text
    expected = {**policy, "maxUses": 100, "floating": True}
    assert {k: v for k, v in patched.json["data"].items() if k != "updatedAt"} == {
        k: v for k, v in expected.items() if k != "updatedAt"
    }


def test_list_is_ordered_paginated_and_filters_by_product(
    client: CheckedClient, acme: Account
) -> None:
    key = acme.live.api_key
    first, second = new_product(client, key), new_product(client, key)
    mine = [new_policy(client, key, first)["id"] for _ in range(3)]
    new_policy(client, key, second)
    page1 = client.get(POLICIES, key=key, params={"productId": first, "limit": 2})
    assert page1.status_code == 200, page1.text
    assert page1.json["pagination"] == {"nextCursor": mine[1], "hasMore": True}
    page2 = client.get(
        POLICIES, key=key, params={"productId": first, "limit": 2, "cursor": mine[1]}
    )
    assert [p["id"] for p in page1.json["data"] + page2.json["data"]] == mine
    assert page2.json["pagination"] == {"nextCursor": None, "hasMore": False}
    everything = client.get(POLICIES, key=key, params={"limit": 100})
    assert {p["productId"] for p in everything.json["data"]} >= {first, second}


def test_list_refuses_a_malformed_product_filter(client: CheckedClient, acme: Account) -> None:
    result = client.get(POLICIES, key=acme.live.api_key, params={"productId": "nope"})
    assert issues(result) == [["productId"]]


def test_attached_and_detached_entitlements_show_on_get(
    client: CheckedClient, acme: Account, product: str
) -> None:
    key = acme.live.api_key
    policy = new_policy(client, key, product)
    a, b = new_entitlement(client, key)["code"], new_entitlement(client, key)["code"]
    url = f"{POLICIES}/{policy['id']}/entitlements"
    attached = client.post(url, key=key, json={"codes": [a, b, a]})
    assert attached.status_code == 200, attached.text
    assert attached.json["data"]["entitlements"] == [a, b]
    again = client.post(url, key=key, json={"codes": [b]})
    assert again.json["data"]["entitlements"] == [a, b]
    detached = client.delete(url, key=key, json={"codes": [a]})
    assert detached.status_code == 200, detached.text
    assert detached.json["data"]["entitlements"] == [b]
    got = client.get(f"{POLICIES}/{policy['id']}", key=key)
    assert got.json["data"]["entitlements"] == [b]


def test_codes_naming_no_entitlement_are_refused(
    client: CheckedClient, acme: Account, globex: Account, product: str
) -> None:
    key = acme.live.api_key
    policy = new_policy(client, key, product)
    known = new_entitlement(client, key)["code"]
    theirs = new_entitlement(client, globex.live.api_key)["code"]
    url = f"{POLICIES}/{policy['id']}/entitlements"
    for method in ("POST", "DELETE"):
        result = client.request(method, url, key=key, json={"codes": [known, "nope", theirs]})
        assert result.status_code == 422, result.text
        assert result.json["code"] == "REFERENCE_NOT_FOUND"
        assert result.json["details"] == {"missing": ["nope", theirs]}
    assert client.get(f"{POLICIES}/{policy['id']}", key=key).json["data"] == policy


def test_the_code_of_a_deleted_entitlement_can_still_be_detached(
    client: CheckedClient, acme: Account, product: str
) -> None:
    key = acme.live.api_key
    policy = new_policy(client, key, product)
    entitlement = new_entitlement(client, key)
    url = f"{POLICIES}/{policy['id']}/entitlements"
    client.post(url, key=key, json={"codes": [entitlement["code"]]})
    deleted = client.delete(f"/api/v1/entitlements/{entitlement['id']}", key=key)
    assert deleted.status_code == 204
    attach = client.post(url, key=key, json={"codes": [entitlement["code"]]})
    assert attach.status_code == 422, attach.text
    detached = client.delete(url, key=key, json={"codes": [entitlement["code"]]})
    assert detached.status_code == 200, detached.text
    assert detached.json["data"]["entitlements"] == []


def test_a_product_id_naming_no_product_is_refused(
    client: CheckedClient, acme: Account, globex: Account
) -> None:
    key = acme.live.api_key
    gone = new_product(client, key)
    assert client.delete(f"/api/v1/products/{gone}", key=key).status_code == 204
    theirs = new_product(client, globex.live.api_key)
    for product_id in (str(uuid4()), gone, theirs):
        body = {"productId": product_id, "name": "P"}
        result = client.post(POLICIES, key=key, json=body)
        assert result.status_code == 422, result.text
        assert result.json["code"] == "REFERENCE_NOT_FOUND"
        assert result.json["details"] == {"path": ["productId"]}


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"name": 5}, ["name"]),
        ({"name": ""}, ["name"]),
        ({"name": "x" * 256}, ["name"]),
        ({"productId": "not-a-uuid"}, ["productId"]),
        ({"template": "enterprise"}, ["template"]),
        ({"maxMachines": 0}, ["maxMachines"]),
        ({"maxMachines": "2"}, ["maxMachines"]),
        ({"maxMachines": 1.5}, ["maxMachines"]),
        ({"maxMachines": 2**31}, ["maxMachines"]),
        ({"maxUses": -1}, ["maxUses"]),
        ({"durationDays": 0}, ["durationDays"]),
        ({"durationDays": 36_501}, ["durationDays"]),
        ({"heartbeatIntervalMinutes": None}, ["heartbeatIntervalMinutes"]),
        ({"heartbeatIntervalMinutes": 0}, ["heartbeatIntervalMinutes"]),
        ({"offlineMaxDays": 0}, ["offlineMaxDays"]),
        ({"trialDurationDays": 0}, ["trialDurationDays"]),
        ({"floating": "yes"}, ["floating"]),
        ({"requireFingerprint": 1}, ["requireFingerprint"]),
        ({"expirationStrategy": "restrict_access"}, ["expirationStrategy"]),
        ({"heartbeatCullStrategy": "KILL"}, ["heartbeatCullStrategy"]),
        ({"fingerprintUniqueness": "GLOBAL"}, ["fingerprintUniqueness"]),
        ({"metadata": []}, ["metadata"]),
        ({"metadata": {f"k{i}": i for i in range(65)}}, ["metadata"]),
        ({"seats": 3}, ["seats"]),
    ],
)
def test_create_refuses_an_invalid_field(
    client: CheckedClient, acme: Account, product: str, body: dict[str, Any], path: list[str]
) -> None:
    result = client.post(
        POLICIES, key=acme.live.api_key, json={"productId": product, "name": "P", **body}
    )
    assert issues(result) == [path]


def test_create_lists_every_missing_required_field(client: CheckedClient, acme: Account) -> None:
    result = client.post(POLICIES, key=acme.live.api_key, json={})
    assert sorted(issues(result)) == [["name"], ["productId"]]


@pytest.mark.parametrize(
    ("body", "paths"),
    [
        ({"productId": str(uuid4())}, [["productId"]]),
        ({"maxMachines": 0, "unknown": 1}, [["maxMachines"], ["unknown"]]),
        ({"template": "TRIAL"}, [["template"]]),
        ({"offlineMaxDays": 36_501}, [["offlineMaxDays"]]),
    ],
)
def test_patch_refuses_an_invalid_field(
    client: CheckedClient,
    acme: Account,
    product: str,
    body: dict[str, Any],
    paths: list[list[str]],
) -> None:
    policy = new_policy(client, acme.live.api_key, product)
    result = client.patch(f"{POLICIES}/{policy['id']}", key=acme.live.api_key, json=body)
    assert sorted(issues(result)) == paths
    assert client.get(f"{POLICIES}/{policy['id']}", key=acme.live.api_key).json["data"] == policy


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({}, ["codes"]),
        ({"codes": []}, ["codes"]),
        ({"codes": "pro"}, ["codes"]),
        ({"codes": ["Pro"]}, ["codes", 0]),
        ({"codes": ["ok", "has space"]}, ["codes", 1]),
        ({"codes": ["x" * 101]}, ["codes", 0]),
        ({"codes": ["ok"], "extra": True}, ["extra"]),
    ],
)
def test_attach_and_detach_refuse_an_invalid_body(
    client: CheckedClient, acme: Account, product: str, body: dict[str, Any], path: list[Any]
) -> None:
    policy = new_policy(client, acme.live.api_key, product)
    url = f"{POLICIES}/{policy['id']}/entitlements"
    for method in ("POST", "DELETE"):
        result = client.request(method, url, key=acme.live.api_key, json=body)
        assert issues(result) == [path], method


def test_malformed_json_is_a_400(client: CheckedClient, acme: Account) -> None:
    result = client.post(
        POLICIES,
        key=acme.live.api_key,
        body="{not json",
        headers={"Content-Type": "application/json"},
    )
    assert result.status_code == 400, result.text
    assert result.json["code"] == "VALIDATION_ERROR"


def test_missing_or_unknown_keys_are_401(
    client: CheckedClient, acme: Account, product: str
) -> None:
    policy = new_policy(client, acme.live.api_key, product)
    unknown = "lk_live_" + secrets.token_urlsafe(32)
    for key in (None, unknown):
        for method, url in (("GET", POLICIES), ("POST", POLICIES),
                            ("GET", f"{POLICIES}/{policy['id']}"),
                            ("PATCH", f"{POLICIES}/{policy['id']}"),
                            ("DELETE", f"{POLICIES}/{policy['id']}"),
                            ("POST", f"{POLICIES}/{policy['id']}/entitlements")):  # fmt: skip
            result = client.request(method, url, key=key, json={"name": "x"})
            assert result.status_code == 401, (method, url, result.text)
            assert result.json["code"] == "UNAUTHORIZED"
    assert client.get(f"{POLICIES}/{policy['id']}", key=acme.live.api_key).json["data"] == policy


def test_scopes_are_enforced(
    client: CheckedClient, ledger: LedgerApplication, config: Config, acme: Account, product: str
) -> None:
    policy = new_policy(client, acme.live.api_key, product)
    url = f"{POLICIES}/{policy['id']}"
    reader = scoped_key(ledger, config, acme.live, ["policies:read"])
    unrelated = scoped_key(ledger, config, acme.live, ["products:write", "entitlements:write"])
    assert client.get(url, key=reader).status_code == 200
    assert client.get(POLICIES, key=reader).status_code == 200
    refused = [
        client.post(POLICIES, key=reader, json={"productId": product, "name": "P"}),
        client.patch(url, key=reader, json={"name": "x"}),
        client.delete(url, key=reader),
        client.post(f"{url}/entitlements", key=reader, json={"codes": ["x"]}),
        client.delete(f"{url}/entitlements", key=reader, json={"codes": ["x"]}),
        client.get(url, key=unrelated),
        client.get(POLICIES, key=unrelated),
    ]
    for result in refused:
        assert result.status_code == 403, result.text
        assert result.json["code"] == "FORBIDDEN"
    assert client.get(url, key=acme.live.api_key).json["data"] == policy
    writer = scoped_key(ledger, config, acme.live, ["policies:write"])
    assert client.patch(url, key=writer, json={"name": "ok"}).status_code == 200


def test_another_tenants_policy_is_not_found_and_unchanged(
    client: CheckedClient, acme: Account, globex: Account, product: str
) -> None:
    owner = acme.live.api_key
    code = new_entitlement(client, owner)["code"]
    policy = new_policy(client, owner, product, template="desktop_app")
    client.post(f"{POLICIES}/{policy['id']}/entitlements", key=owner, json={"codes": [code]})
    before = client.get(f"{POLICIES}/{policy['id']}", key=owner).json["data"]
    url = f"{POLICIES}/{policy['id']}"
    for intruder in (globex.live.api_key, acme.test.api_key):
        new_entitlement(client, intruder, code=code)  # the same code exists on their side
        attempts: list[tuple[str, str, Any]] = [
            ("GET", url, None),
            ("PATCH", url, {"maxMachines": 99}),
            ("DELETE", url, None),
            ("POST", f"{url}/entitlements", {"codes": [code]}),
            ("DELETE", f"{url}/entitlements", {"codes": [code]}),
        ]
        for method, path, body in attempts:
            result = client.request(method, path, key=intruder, json=body)
            assert result.status_code == 404, (method, path, result.text)
            assert result.json["code"] == "NOT_FOUND"
        listed = client.get(POLICIES, key=intruder, params={"limit": 100})
        assert policy["id"] not in [p["id"] for p in listed.json["data"]]
        assert client.get(url, key=owner).json["data"] == before


def test_a_policy_in_use_cannot_be_deleted(
    client: CheckedClient, ledger: LedgerApplication, config: Config, acme: Account, product: str
) -> None:
    key = acme.live.api_key
    policy = new_policy(client, key, product)
    ctx = context(acme.live)
    issued = licenses.issue_license(
        ledger,
        ctx,
        license_id=uuid4(),
        product_id=UUID(product),
        policy_id=UUID(policy["id"]),
        pepper=config.pepper,
    )
    url = f"{POLICIES}/{policy['id']}"
    refused = client.delete(url, key=key)
    assert refused.status_code == 409, refused.text
    assert refused.json["code"] == "CONFLICT"
    assert refused.json["details"] == {"licenses": 1}
    assert client.get(url, key=key).json["data"] == policy
    licenses.delete_license(ledger, ctx, issued.license.id)
    assert client.delete(url, key=key).status_code == 204


def test_a_deleted_policy_is_gone(client: CheckedClient, acme: Account, product: str) -> None:
    key = acme.live.api_key
    policy = new_policy(client, key, product)
    code = new_entitlement(client, key)["code"]
    url = f"{POLICIES}/{policy['id']}"
    assert client.delete(url, key=key).status_code == 204
    gone = [
        client.get(url, key=key),
        client.patch(url, key=key, json={"name": "back"}),
        client.delete(url, key=key),
        client.post(f"{url}/entitlements", key=key, json={"codes": [code]}),
        client.delete(f"{url}/entitlements", key=key, json={"codes": [code]}),
    ]
    for result in gone:
        assert result.status_code == 404, result.text
        assert result.json["code"] == "NOT_FOUND"
    listed = client.get(POLICIES, key=key, params={"productId": product, "limit": 100})
    assert policy["id"] not in [p["id"] for p in listed.json["data"]]


def test_idempotency_key_replays_the_create_and_refuses_reuse(
    client: CheckedClient, acme: Account
) -> None:
    key = acme.live.api_key
    product = new_product(client, key)
    headers = {"Idempotency-Key": "pol-" + secrets.token_hex(8)}
    body = {"productId": product, "name": "Once", "template": "cli_tool"}
    first = client.post(POLICIES, key=key, json=body, headers=headers)
    again = client.post(POLICIES, key=key, json=body, headers=headers)
    assert first.status_code == again.status_code == 201, first.text
    assert again.content == first.content
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.headers
    reused = client.post(POLICIES, key=key, json={**body, "name": "Twice"}, headers=headers)
    assert reused.status_code == 409, reused.text
    assert reused.json["code"] == "IDEMPOTENCY_KEY_REUSED"
    listed = client.get(POLICIES, key=key, params={"productId": product})
    assert [p["id"] for p in listed.json["data"]] == [first.json["data"]["id"]]


def test_idempotency_key_replays_an_attach(
    client: CheckedClient, acme: Account, product: str
) -> None:
    key = acme.live.api_key
    policy = new_policy(client, key, product)
    code = new_entitlement(client, key)["code"]
    url = f"{POLICIES}/{policy['id']}/entitlements"
    headers = {"Idempotency-Key": "att-" + secrets.token_hex(8)}
    first = client.post(url, key=key, json={"codes": [code]}, headers=headers)
    client.delete(url, key=key, json={"codes": [code]})
    again = client.post(url, key=key, json={"codes": [code]}, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.content == first.content
    assert again.headers.get("Idempotent-Replayed") == "true"
    # A replay does not run the command again: the detach stands.
    assert client.get(f"{POLICIES}/{policy['id']}", key=key).json["data"]["entitlements"] == []
