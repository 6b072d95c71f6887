"""`/licenses`: issue, list, read by id and by key, update, delete (API.md §4)."""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest

from api.config import Config
from ledger.application import LedgerApplication
from tests.integration.api.catalogue import POLICIES
from tests.integration.api.catalogue import issues
from tests.integration.api.catalogue import new_entitlement
from tests.integration.api.catalogue import scoped_key
from tests.integration.api.conftest import Account
from tests.integration.api.conftest import CheckedClient
from tests.integration.api.licensing import HEX_DIGEST
from tests.integration.api.licensing import KEY_GROUP
from tests.integration.api.licensing import LICENSES
from tests.integration.api.licensing import PAST
from tests.integration.api.licensing import action
from tests.integration.api.licensing import in_days
from tests.integration.api.licensing import issue
from tests.integration.api.licensing import new_policy
from tests.integration.api.licensing import new_product
from tests.integration.api.licensing import parse
from tests.integration.api.licensing import read
from tests.integration.api.licensing import refused

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def policy(client: CheckedClient, acme: Account) -> dict[str, Any]:
    """A policy of a product whose keys start with `ACME`; licenses last 30 days."""
    product = new_product(client, acme.live.api_key, prefix="ACME")
    return new_policy(client, acme.live.api_key, product["id"], durationDays=30)


def test_issuing_answers_the_key_once_in_the_documented_format(
    client: CheckedClient, acme: Account, policy: dict[str, Any]
) -> None:
    key = acme.live.api_key
    license_ = issue(
        client, key, policy, name="Ada", userEmail="ada@example.com", userName="Ada L."
    )
    assert re.fullmatch(rf"ACME(-{KEY_GROUP}){{4}}", license_["key"]), license_["key"]
    assert license_["status"] == "active"
    assert license_["usesCount"] == license_["machineCount"] == 0
    assert license_["machines"] == []
    assert license_["policy"] == client.get(f"{POLICIES}/{policy['id']}", key=key).json["data"]
    assert license_["createdAt"].endswith("Z")
    # The default expiry: the policy's durationDays after creation, to the millisecond.
    assert parse(license_["expiresAt"]) - parse(license_["createdAt"]) == timedelta(days=30)
    got = read(client, key, license_["id"])
    assert "key" not in got
    assert got == {k: v for k, v in license_.items() if k != "key"}


def test_expiry_given_wins_and_null_means_never(
    client: CheckedClient, acme: Account, policy: dict[str, Any]
) -> None:
    key = acme.live.api_key
    assert issue(client, key, policy, expiresAt=None)["expiresAt"] is None
    given = issue(client, key, policy, expiresAt="2031-02-03T04:05:06.789+01:00")
    assert given["expiresAt"] == "2031-02-03T03:05:06.789Z"
    never = new_policy(client, key, policy["productId"])  # no durationDays
    assert issue(client, key, never)["expiresAt"] is None


def test_effective_entitlements_are_the_policys_and_the_licenses_own(
    client: CheckedClient, acme: Account
) -> None:
    key = acme.live.api_key
    a, b, c = (new_entitlement(client, key)["code"] for _ in range(3))
    product = new_product(client, key)
    policy = new_policy(client, key, product["id"])
    attached = client.post(
        f"{POLICIES}/{policy['id']}/entitlements", key=key, json={"codes": [a, b]}
    )
    assert attached.status_code == 200, attached.text
    license_ = issue(client, key, attached.json["data"], entitlements=[b, c, c])
    assert license_["entitlements"] == [a, b, c]
    path = f"{LICENSES}/{license_['id']}/entitlements"
    detached = client.delete(path, key=key, json={"codes": [c]})
    assert detached.status_code == 200, detached.text
    assert detached.json["data"]["entitlements"] == [a, b]
    unknown = client.post(path, key=key, json={"codes": [c, "no-such-code"]})
    assert refused(unknown, 422, "REFERENCE_NOT_FOUND")["details"]["missing"] == ["no-such-code"]
    assert client.post(path, key=key, json={"codes": [c]}).json["data"]["entitlements"] == [a, b, c]


def test_issuing_with_unknown_references_is_422(
    client: CheckedClient, acme: Account, policy: dict[str, Any]
) -> None:
    key = acme.live.api_key
    before = client.get(LICENSES, key=key, params={"productId": policy["productId"]}).json
    body = {"productId": policy["productId"], "policyId": policy["id"]}
    missing = client.post(LICENSES, key=key, json={**body, "entitlements": ["ghost-1", "ghost-2"]})
    assert refused(missing, 422, "REFERENCE_NOT_FOUND")["details"]["missing"] == [
        "ghost-1",
        "ghost-2",
    ]
    no_policy = client.post(LICENSES, key=key, json={**body, "policyId": str(str(uuid.uuid4()))})
    assert refused(no_policy, 422, "REFERENCE_NOT_FOUND")["details"]["path"] == ["policyId"]
    no_product = client.post(LICENSES, key=key, json={**body, "productId": str(str(uuid.uuid4()))})
    refused(no_product, 422, "REFERENCE_NOT_FOUND")
    other_product = new_product(client, key)
    mismatch = client.post(LICENSES, key=key, json={**body, "productId": other_product["id"]})
    refused(mismatch, 422, "BUSINESS_RULE_VIOLATION")
    after = client.get(LICENSES, key=key, params={"productId": policy["productId"]}).json
    assert after == before


def _ids(result: Any) -> list[str]:
    assert result.status_code == 200, result.text
    return [item["id"] for item in result.json["data"]]


def test_list_filters_by_product_policy_status_and_email(
    client: CheckedClient, acme: Account
) -> None:
    key = acme.live.api_key
    product = new_product(client, key)
    first = new_policy(client, key, product["id"])
    second = new_policy(client, key, product["id"])
    email = f"{secrets.token_hex(4)}@example.com"
    active = issue(client, key, first, userEmail=email)["id"]
    expired = issue(client, key, first, expiresAt=PAST)["id"]
    suspended = issue(client, key, second, expiresAt=in_days(5))["id"]
    revoked = issue(client, key, second)["id"]
    banned = issue(client, key, second, userEmail=email)["id"]
    for license_id, verb in ((suspended, "suspend"), (revoked, "revoke"), (banned, "ban")):
        assert action(client, key, license_id, verb).status_code == 200

    def listed(**params: str) -> list[str]:
        return _ids(client.get(LICENSES, key=key, params={"productId": product["id"], **params}))

    assert listed() == [active, expired, suspended, revoked, banned]
    assert listed(policyId=first["id"]) == [active, expired]
    assert _ids(client.get(LICENSES, key=key, params={"policyId": second["id"]})) == [
        suspended,
        revoked,
        banned,
    ]
    assert listed(status="active") == [active]
    assert listed(status="expired") == [expired]
    assert listed(status="suspended") == [suspended]
    assert listed(status="revoked") == [revoked]
    assert listed(status="banned") == [banned]
    assert listed(userEmail=email) == [active, banned]
    assert listed(userEmail=email, status="banned") == [banned]
    assert read(client, key, expired)["status"] == "expired"
    assert issues(client.get(LICENSES, key=key, params={"status": "ACTIVE"})) == [["status"]]
    assert issues(client.get(LICENSES, key=key, params={"productId": "x"})) == [["productId"]]


def test_pages_follow_the_cursor_in_creation_order(client: CheckedClient, acme: Account) -> None:
    key = acme.live.api_key
    policy = new_policy(client, key, new_product(client, key)["id"])
    made = [issue(client, key, policy)["id"] for _ in range(5)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"productId": policy["productId"], "limit": "2"}
        if cursor is not None:
            params["cursor"] = cursor
        result = client.get(LICENSES, key=key, params=params)
        seen += _ids(result)
        pages += 1
        pagination = result.json["pagination"]
        if not pagination["hasMore"]:
            assert pagination["nextCursor"] is None
            break
        cursor = pagination["nextCursor"]
        assert cursor == seen[-1]
    assert seen == made
    assert pages == 3
    assert issues(client.get(LICENSES, key=key, params={"limit": "0"})) == [["limit"]]
    assert issues(client.get(LICENSES, key=key, params={"cursor": str(uuid.uuid4())})) == [
        ["cursor"]
    ]


def test_a_license_is_found_by_its_url_encoded_key(
    client: CheckedClient, acme: Account, globex: Account, policy: dict[str, Any]
) -> None:
    key = acme.live.api_key
    license_ = issue(client, key, policy)
    by_key = client.get(f"{LICENSES}/by-key/{quote(license_['key'], safe='')}", key=key)
    assert by_key.status_code == 200, by_key.text
    assert by_key.json["data"] == read(client, key, license_["id"])
    every_byte_encoded = "".join(f"%{b:02X}" for b in license_["key"].encode())
    encoded = client.get(f"{LICENSES}/by-key/{every_byte_encoded}", key=key)
    assert encoded.json["data"] == by_key.json["data"]
    for wrong in (license_["key"].lower(), license_["key"] + "X", "A" * 500):
        refused(client.get(f"{LICENSES}/by-key/{quote(wrong)}", key=key), 404, "NOT_FOUND")
    for intruder in (globex.live.api_key, acme.test.api_key):
        found = client.get(f"{LICENSES}/by-key/{license_['key']}", key=intruder)
        refused(found, 404, "NOT_FOUND")
    assert client.delete(f"{LICENSES}/{license_['id']}", key=key).status_code == 204
    refused(client.get(f"{LICENSES}/by-key/{license_['key']}", key=key), 404, "NOT_FOUND")


def test_patch_changes_the_given_fields_only(
    client: CheckedClient, acme: Account, policy: dict[str, Any]
) -> None:
    key = acme.live.api_key
    license_ = issue(client, key, policy, name="Before", userEmail="a@example.com")
    path = f"{LICENSES}/{license_['id']}"
    changes = {
        "name": "After",
        "maxMachinesOverride": 3,
        "maxUsesOverride": 100,
        "userName": "Bea",
        "metadata": {"seat": "42"},
        "expiresAt": None,
    }
    patched = client.patch(path, key=key, json=changes)
    assert patched.status_code == 200, patched.text
    document = patched.json["data"]
    assert {k: document[k] for k in changes} == changes
    assert document["userEmail"] == "a@example.com"
    assert parse(document["updatedAt"]) >= parse(license_["updatedAt"])
    sibling = new_policy(client, key, policy["productId"], maxMachines=7)
    moved = client.patch(path, key=key, json={"policyId": sibling["id"]}).json["data"]
    assert moved["policyId"] == sibling["id"]
    assert moved["policy"]["maxMachines"] == 7
    foreign = new_policy(client, key, new_product(client, key)["id"])
    refused(client.patch(path, key=key, json={"policyId": foreign["id"]}), 422,
            "BUSINESS_RULE_VIOLATION")  # fmt: skip
    refused(
        client.patch(path, key=key, json={"policyId": str(uuid.uuid4())}),
        422,
        "REFERENCE_NOT_FOUND",
    )
    assert read(client, key, license_["id"])["policyId"] == sibling["id"]


def test_delete_is_soft_and_final(
    client: CheckedClient, acme: Account, policy: dict[str, Any]
) -> None:
    key = acme.live.api_key
    license_ = issue(client, key, policy)
    path = f"{LICENSES}/{license_['id']}"
    deleted = client.delete(path, key=key)
    assert deleted.status_code == 204
    assert deleted.content == b""
    refused(client.get(path, key=key), 404, "NOT_FOUND")
    refused(client.delete(path, key=key), 404, "NOT_FOUND")
    refused(client.patch(path, key=key, json={"name": "x"}), 404, "NOT_FOUND")
    refused(action(client, key, license_["id"], "suspend"), 404, "NOT_FOUND")
    listed = client.get(LICENSES, key=key, params={"productId": policy["productId"]})
    assert license_["id"] not in _ids(listed)


@pytest.mark.parametrize(
    ("body", "paths"),
    [
        ({}, [["policyId"], ["productId"]]),
        ({"extra": 1}, [["extra"], ["policyId"], ["productId"]]),
        ({"PRODUCT": 1, "policyId": 1}, [["PRODUCT"], ["policyId"], ["productId"]]),
        ({"productId": "not-a-uuid", "policyId": None}, [["policyId"], ["productId"]]),
        ({"maxUsesOverride": 0, "maxMachinesOverride": "2"},
         [["maxMachinesOverride"], ["maxUsesOverride"], ["policyId"], ["productId"]]),
        ({"expiresAt": "tomorrow", "userEmail": "nobody"},
         [["expiresAt"], ["policyId"], ["productId"], ["userEmail"]]),
        ({"entitlements": ["UPPER"], "metadata": []},
         [["entitlements", 0], ["metadata"], ["policyId"], ["productId"]]),
    ],
)  # fmt: skip
def test_invalid_create_bodies_are_400_listing_every_issue(
    client: CheckedClient, acme: Account, body: dict[str, Any], paths: list[list[Any]]
) -> None:
    assert issues(client.post(LICENSES, key=acme.live.api_key, json=body)) == paths


def test_invalid_bodies_of_patch_and_actions_are_400(
    client: CheckedClient, acme: Account, policy: dict[str, Any]
) -> None:
    key = acme.live.api_key
    license_id = issue(client, key, policy)["id"]
    path = f"{LICENSES}/{license_id}"
    assert issues(client.patch(path, key=key, json={"productId": policy["productId"]})) == [
        ["productId"]
    ]
    assert issues(client.patch(path, key=key, json={"expiresAt": "0001-01-01T00:00:00Z"})) == [
        ["expiresAt"]
    ]
    assert issues(client.patch(path, key=key, json={"policyId": None})) == [["policyId"]]
    malformed = client.post(LICENSES, key=key, body="{not json", headers=JSON)
    refused(malformed, 400, "VALIDATION_ERROR")
    assert issues(action(client, key, license_id, "usage", json={})) == [["increment"]]
    assert issues(action(client, key, license_id, "usage", json={"increment": 0})) == [
        ["increment"]
    ]
    assert issues(action(client, key, license_id, "usage", json={"increment": 1.5})) == [
        ["increment"]
    ]
    assert issues(action(client, key, license_id, "renew", json={"until": PAST})) == [["until"]]
    assert issues(action(client, key, license_id, "renew", json={"expiresAt": PAST})) == [
        ["expiresAt"]
    ]
    codes = f"{path}/entitlements"
    assert issues(client.post(codes, key=key, json={"codes": []})) == [["codes"]]
    assert issues(client.delete(codes, key=key, json={})) == [["codes"]]
    assert read(client, key, license_id)["usesCount"] == 0


def test_scopes_are_enforced(
    client: CheckedClient,
    ledger: LedgerApplication,
    config: Config,
    acme: Account,
    policy: dict[str, Any],
) -> None:
    license_ = issue(client, acme.live.api_key, policy)
    reader = scoped_key(ledger, config, acme.live, ["licenses:read"])
    assert client.get(f"{LICENSES}/{license_['id']}", key=reader).status_code == 200
    assert client.get(f"{LICENSES}/by-key/{license_['key']}", key=reader).status_code == 200
    body = {"productId": policy["productId"], "policyId": policy["id"]}
    refused(client.post(LICENSES, key=reader, json=body), 403, "FORBIDDEN")
    refused(action(client, reader, license_["id"], "suspend"), 403, "FORBIDDEN")
    outsider = scoped_key(ledger, config, acme.live, ["products:read"])
    refused(client.get(LICENSES, key=outsider), 403, "FORBIDDEN")
    refused(client.get(f"{LICENSES}/{license_['id']}", key=outsider), 403, "FORBIDDEN")
    refused(client.get(LICENSES), 401, "UNAUTHORIZED")


def test_other_tenants_and_environments_see_nothing_and_change_nothing(
    client: CheckedClient, acme: Account, globex: Account, policy: dict[str, Any]
) -> None:
    key = acme.live.api_key
    license_ = issue(client, key, policy)
    license_id = license_["id"]
    before = read(client, key, license_id)
    for intruder in (globex.live.api_key, acme.test.api_key):
        path = f"{LICENSES}/{license_id}"
        refused(client.get(path, key=intruder), 404, "NOT_FOUND")
        refused(client.patch(path, key=intruder, json={"name": "pwned"}), 404, "NOT_FOUND")
        for verb in ("suspend", "revoke", "ban", "renew", "reset-usage"):
            refused(action(client, intruder, license_id, verb), 404, "NOT_FOUND")
        usage = action(client, intruder, license_id, "usage", json={"increment": 1})
        refused(usage, 404, "NOT_FOUND")
        refused(client.delete(path, key=intruder), 404, "NOT_FOUND")
        listed = client.get(LICENSES, key=intruder, params={"productId": policy["productId"]})
        assert _ids(listed) == []
        # Issuing on another tenant's product and policy: they do not exist for it.
        body = {"productId": policy["productId"], "policyId": policy["id"]}
        refused(client.post(LICENSES, key=intruder, json=body), 422, "REFERENCE_NOT_FOUND")
    assert read(client, key, license_id) == before


def test_idempotency_key_replays_the_same_key_and_issues_once(
    client: CheckedClient, acme: Account
) -> None:
    key = acme.live.api_key
    policy = new_policy(client, key, new_product(client, key)["id"])
    body = {"productId": policy["productId"], "policyId": policy["id"], "name": "Once"}
    headers = {"Idempotency-Key": "issue-" + secrets.token_hex(8)}
    first = client.post(LICENSES, key=key, json=body, headers=headers)
    again = client.post(LICENSES, key=key, json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers.get("Idempotent-Replayed") == "true"
    reused = client.post(LICENSES, key=key, json={**body, "name": "Twice"}, headers=headers)
    refused(reused, 409, "IDEMPOTENCY_KEY_REUSED")
    listed = client.get(LICENSES, key=key, params={"productId": policy["productId"]})
    assert _ids(listed) == [first.json["data"]["id"]]


def test_no_response_carries_a_key_or_a_hash_except_the_201(
    client: CheckedClient, acme: Account, policy: dict[str, Any]
) -> None:
    key = acme.live.api_key
    issued = client.post(
        LICENSES, key=key, json={"productId": policy["productId"], "policyId": policy["id"]}
    )
    license_ = issued.json["data"]
    assert not HEX_DIGEST.search(issued.text)
    path = f"{LICENSES}/{license_['id']}"
    responses = [
        client.get(path, key=key),
        client.get(f"{LICENSES}/by-key/{license_['key']}", key=key),
        client.get(LICENSES, key=key, params={"productId": policy["productId"]}),
        client.patch(path, key=key, json={"name": "n"}),
        action(client, key, license_["id"], "suspend"),
        action(client, key, license_["id"], "reinstate"),
        action(client, key, license_["id"], "usage", json={"increment": 1}),
    ]
    for result in responses:
        assert result.status_code == 200, result.text
        assert license_["key"] not in result.text
        assert not HEX_DIGEST.search(result.text), result.text
        assert "keyHash" not in result.text
