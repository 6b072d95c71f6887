"""Helpers the license API tests share."""

from __future__ import annotations

import re
import secrets
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

from tests.integration.api.catalogue import POLICIES
from tests.integration.api.catalogue import PRODUCTS
from tests.integration.api.catalogue import created
from tests.integration.api.conftest import CheckedClient

LICENSES = "/api/v1/licenses"
KEY_GROUP = "[ABCDEFGHJKLMNPQRSTUVWXYZ23456789]{4}"
# Anything that looks like a SHA-256/HMAC digest in hex.
HEX_DIGEST = re.compile(r"(?<![0-9a-fA-F])[0-9a-fA-F]{64}(?![0-9a-fA-F])")
PAST = "2020-01-01T00:00:00.000Z"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


def in_days(days: float) -> str:
    return iso(datetime.now(UTC) + timedelta(days=days))


def new_product(client: CheckedClient, key: str, prefix: str = "LIC") -> dict[str, Any]:
    body = {"name": "Product", "code": "p-" + secrets.token_hex(4), "keyPrefix": prefix}
    return created(client.post(PRODUCTS, key=key, json=body))


def new_policy(client: CheckedClient, key: str, product_id: str, **fields: Any) -> dict[str, Any]:
    body = {"productId": product_id, "name": "Policy", **fields}
    return created(client.post(POLICIES, key=key, json=body))


def issue(client: CheckedClient, key: str, policy: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A new license on `policy` (the 201 document, with its `key`)."""
    body = {"productId": policy["productId"], "policyId": policy["id"], **fields}
    return created(client.post(LICENSES, key=key, json=body))


def action(client: CheckedClient, key: str, license_id: str, name: str, **kw: Any) -> Any:
    return client.post(f"{LICENSES}/{license_id}/{name}", key=key, **kw)


def read(client: CheckedClient, key: str, license_id: str) -> dict[str, Any]:
    result = client.get(f"{LICENSES}/{license_id}", key=key)
    assert result.status_code == 200, result.text
    document: dict[str, Any] = result.json["data"]
    return document


def refused(result: Any, status: int, code: str) -> dict[str, Any]:
    """The error body, after checking its status and code."""
    assert result.status_code == status, result.text
    assert result.json["code"] == code, result.text
    body: dict[str, Any] = result.json
    return body
