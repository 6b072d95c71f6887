"""`/products`: create, read, list, update, delete (API.md §4)."""

from __future__ import annotations

import uuid

from tests.integration.api.conftest import Account
from tests.integration.api.conftest import CheckedClient


def test_product_lifecycle(client: CheckedClient, acme: Account) -> None:
    key = acme.live.api_key
    code = "app-" + uuid.uuid4().hex[:8]
    created = client.post("/api/v1/products", key=key, json={"name": "App", "code": code})
    assert created.status_code == 201, created.text
    product = created.json["data"]
    assert product["keyPrefix"] == "LIC"
    assert product["licensesCount"] == 0
    assert product["createdAt"].endswith("Z")
    got = client.get(f"/api/v1/products/{product['id']}", key=key)
    assert got.json["data"] == product
    patched = client.patch(
        f"/api/v1/products/{product['id']}", key=key, json={"name": "App 2", "keyPrefix": "APP"}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json["data"]["name"] == "App 2"
    listed = client.get("/api/v1/products", key=key)
    assert product["id"] in [p["id"] for p in listed.json["data"]]
    duplicate = client.post("/api/v1/products", key=key, json={"name": "X", "code": code})
    assert duplicate.status_code == 409, duplicate.text
    assert client.delete(f"/api/v1/products/{product['id']}", key=key).status_code == 204
    assert client.get(f"/api/v1/products/{product['id']}", key=key).status_code == 404


def test_other_tenants_product_is_not_found(
    client: CheckedClient, acme: Account, globex: Account
) -> None:
    created = client.post(
        "/api/v1/products", key=acme.live.api_key, json={"name": "A", "code": "a1"}
    )
    product_id = created.json["data"]["id"]
    assert client.get(f"/api/v1/products/{product_id}", key=globex.live.api_key).status_code == 404
    assert client.get(f"/api/v1/products/{product_id}", key=acme.test.api_key).status_code == 404
