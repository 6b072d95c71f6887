"""`/webhooks`: endpoint management, secrets shown once, URL checks, isolation, test
messages, the delivery log, redeliver and recover (API.md §6).

No worker runs here: deliveries are created by running the outbox consumer in-process
and stay pending, which is what the management endpoints need to be checked.
"""

from __future__ import annotations

import base64
import threading
from typing import Any
from uuid import UUID

import orjson
import psycopg
import pytest

from api.config import Config
from ledger.application import LedgerApplication
from projections.webhook_outbox import WebhookOutbox
from tests.integration.api.catalogue import created
from tests.integration.api.catalogue import issues
from tests.integration.api.catalogue import new_product
from tests.integration.api.catalogue import scoped_key
from tests.integration.api.conftest import Account
from tests.integration.api.conftest import CheckedClient

WEBHOOKS = "/api/v1/webhooks"
# A global (public) address: accepted without LICENTRIC_WEBHOOK_ALLOW_PRIVATE.
PUBLIC_URL = "https://93.184.216.34/hooks/licentric"


def new_webhook(client: CheckedClient, key: str, **fields: Any) -> dict[str, Any]:
    body = {"url": PUBLIC_URL, "events": ["*"], **fields}
    return created(client.post(WEBHOOKS, key=key, json=body))


def test_create_returns_the_secret_once(client: CheckedClient, acme: Account) -> None:
    key = acme.live.api_key
    webhook = new_webhook(client, key, description="CRM", metadata={"team": "ops"})

    secret = webhook["secret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    got = client.get(f"{WEBHOOKS}/{webhook['id']}", key=key).json["data"]
    assert "secret" not in got
    assert got == {k: v for k, v in webhook.items() if k != "secret"}
    listed = client.get(WEBHOOKS, key=key).json["data"]
    assert all("secret" not in item for item in listed)
    assert webhook["id"] in [item["id"] for item in listed]


def test_secret_is_stored_only_encrypted(
    client: CheckedClient, acme: Account, config: Config
) -> None:
    webhook = new_webhook(client, acme.live.api_key)
    secret = webhook["secret"]
    assert config.database_url is not None
    with psycopg.connect(config.database_url) as conn:
        dumped = conn.execute(
            "SELECT row_to_json(w)::text FROM webhook_endpoints w WHERE id = %s",
            (UUID(webhook["id"]),),
        ).fetchone()
        events = conn.execute(
            "SELECT string_agg(data::text, ' ') FROM events WHERE stream_id = %s",
            (UUID(webhook["id"]),),
        ).fetchone()
    assert dumped is not None
    assert events is not None
    assert secret not in dumped[0]
    assert secret.removeprefix("whsec_") not in events[0]


def test_rotate_secret_returns_a_new_one(client: CheckedClient, acme: Account) -> None:
    key = acme.live.api_key
    webhook = new_webhook(client, key)
    rotated = client.post(f"{WEBHOOKS}/{webhook['id']}/rotate-secret", key=key)
    assert rotated.status_code == 200, rotated.text
    assert rotated.json["data"]["secret"].startswith("whsec_")
    assert rotated.json["data"]["secret"] != webhook["secret"]


def test_patch_and_delete(client: CheckedClient, acme: Account) -> None:
    key = acme.live.api_key
    webhook = new_webhook(client, key)
    path = f"{WEBHOOKS}/{webhook['id']}"
    patched = client.patch(
        path, key=key, json={"events": ["license.*", "machine.activated"], "enabled": False}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json["data"]["events"] == ["license.*", "machine.activated"]
    assert patched.json["data"]["enabled"] is False
    assert client.delete(path, key=key).status_code == 204
    assert client.get(path, key=key).status_code == 404
    assert client.delete(path, key=key).status_code == 404


@pytest.mark.parametrize(
    ("body", "paths"),
    [
        ({"url": "ftp://93.184.216.34/x", "events": ["*"]}, [["url"]]),
        ({"url": "not a url", "events": ["*"]}, [["url"]]),
        ({"url": PUBLIC_URL, "events": []}, [["events"]]),
        ({"url": PUBLIC_URL, "events": ["license.nope"]}, [["events", 0]]),
        ({"url": PUBLIC_URL, "events": ["*"], "secret": "x"}, [["secret"]]),
        ({"events": ["*"]}, [["url"]]),
    ],
)
def test_invalid_bodies_are_400(
    client: CheckedClient, acme: Account, body: dict[str, Any], paths: list[list[str | int]]
) -> None:
    assert issues(client.post(WEBHOOKS, key=acme.live.api_key, json=body)) == paths


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://100.64.0.1/hook",
    ],
)
def test_private_targets_are_refused_with_422(
    client: CheckedClient, acme: Account, url: str
) -> None:
    result = client.post(WEBHOOKS, key=acme.live.api_key, json={"url": url, "events": ["*"]})
    assert result.status_code == 422, result.text
    assert result.json["details"]["reason"] == "WEBHOOK_URL_NOT_ALLOWED"
    webhook = new_webhook(client, acme.live.api_key)
    patched = client.patch(f"{WEBHOOKS}/{webhook['id']}", key=acme.live.api_key, json={"url": url})
    assert patched.status_code == 422, patched.text


def test_auth_and_scopes(
    client: CheckedClient, acme: Account, ledger: LedgerApplication, config: Config
) -> None:
    assert client.get(WEBHOOKS).status_code == 401
    assert client.get(WEBHOOKS, key="lk_live_" + "x" * 43).status_code == 401
    reader = scoped_key(ledger, config, acme.live, ["webhooks:read"])
    other = scoped_key(ledger, config, acme.live, ["products:write"])
    assert client.get(WEBHOOKS, key=reader).status_code == 200
    assert client.get(WEBHOOKS, key=other).status_code == 403
    refused = client.post(WEBHOOKS, key=reader, json={"url": PUBLIC_URL, "events": ["*"]})
    assert refused.status_code == 403
    webhook = new_webhook(client, acme.live.api_key)
    assert client.post(f"{WEBHOOKS}/{webhook['id']}/test", key=reader).status_code == 403
    assert client.get(f"{WEBHOOKS}/{webhook['id']}/deliveries", key=reader).status_code == 200


def test_other_tenants_webhooks_are_not_found(
    client: CheckedClient, acme: Account, globex: Account
) -> None:
    webhook = new_webhook(client, acme.live.api_key)
    base = f"{WEBHOOKS}/{webhook['id']}"
    for key in (globex.live.api_key, acme.test.api_key):
        assert client.get(base, key=key).status_code == 404
        assert client.patch(base, key=key, json={"enabled": False}).status_code == 404
        assert client.post(f"{base}/rotate-secret", key=key).status_code == 404
        assert client.post(f"{base}/test", key=key).status_code == 404
        assert client.get(f"{base}/deliveries", key=key).status_code == 404
        recover = client.post(f"{base}/recover", key=key, json={"since": "2020-01-01T00:00:00Z"})
        assert recover.status_code == 404
        assert client.delete(base, key=key).status_code == 404
        assert webhook["id"] not in [w["id"] for w in client.get(WEBHOOKS, key=key).json["data"]]
    still = client.get(base, key=acme.live.api_key)
    assert still.json["data"]["enabled"] is True


def test_test_message_is_queued_with_the_endpoint_as_data(
    client: CheckedClient, acme: Account
) -> None:
    key = acme.live.api_key
    webhook = new_webhook(client, key)
    queued = client.post(f"{WEBHOOKS}/{webhook['id']}/test", key=key)
    assert queued.status_code == 200, queued.text
    delivery = queued.json["data"]
    assert delivery["type"] == "webhook.test"
    assert delivery["status"] == "pending"
    assert delivery["payload"]["data"]["id"] == webhook["id"]
    assert delivery["payload"]["id"] == delivery["eventId"]
    log = client.get(f"{WEBHOOKS}/{webhook['id']}/deliveries", key=key).json["data"]
    assert [d["id"] for d in log] == [delivery["id"]]


def test_consumer_creates_deliveries_filtered_by_event_list(
    client: CheckedClient, acme: Account, ledger: LedgerApplication
) -> None:
    key = acme.test.api_key
    everything = new_webhook(client, key)
    products_only = new_webhook(client, key, events=["product.created"])
    product_id = new_product(client, key)
    client.patch(f"/api/v1/products/{product_id}", key=key, json={"name": "Renamed"})
    outbox = WebhookOutbox(ledger)
    while outbox.consume(UUID(acme.test.tenant_id)):
        pass

    def log(webhook: dict[str, Any]) -> list[dict[str, Any]]:
        path = f"{WEBHOOKS}/{webhook['id']}/deliveries"
        return list(client.get(path, key=key).json["data"])

    all_types = [d["type"] for d in log(everything)]
    assert all_types[-2:] == ["product.created", "product.updated"]
    assert "product.created" not in all_types[:-2]  # nothing from before its creation
    only = log(products_only)
    assert [d["type"] for d in only] == ["product.created"]
    payload = only[0]["payload"]
    assert payload["data"]["id"] == product_id
    assert payload["data"]["name"] == "Product"  # as created, not as renamed later
    assert payload["id"] == only[0]["eventId"]
    assert payload["sequence"] == only[0]["sequence"] > 0


def test_redeliver_and_recover_queue_copies_in_order(
    client: CheckedClient, acme: Account, ledger: LedgerApplication
) -> None:
    key = acme.test.api_key
    webhook = new_webhook(client, key, events=["product.*"])
    base = f"{WEBHOOKS}/{webhook['id']}"
    for _ in range(3):
        new_product(client, key)
    outbox = WebhookOutbox(ledger)
    while outbox.consume(UUID(acme.test.tenant_id)):
        pass
    originals = client.get(f"{base}/deliveries", key=key).json["data"]
    assert len(originals) == 3

    copy = client.post(f"{base}/deliveries/{originals[0]['id']}/redeliver", key=key)
    assert copy.status_code == 200, copy.text
    assert copy.json["data"]["redeliveryOf"] == originals[0]["id"]
    assert copy.json["data"]["payload"] == originals[0]["payload"]
    missing = client.post(f"{base}/deliveries/{webhook['id']}/redeliver", key=key)
    assert missing.status_code == 404

    recovered = client.post(f"{base}/recover", key=key, json={"since": "2000-01-01T00:00:00Z"})
    assert recovered.status_code == 200, recovered.text
    assert recovered.json["data"]["enqueued"] == 3
    log = client.get(f"{base}/deliveries", key=key, params={"limit": 100}).json["data"]
    pending = [d for d in log if d["status"] == "pending"]
    assert [d["eventId"] for d in pending] == [d["eventId"] for d in originals]
    superseded = [d for d in log if d["status"] == "superseded"]
    assert len(superseded) == 4  # three originals and the first copy, never sent
    page = client.get(f"{base}/deliveries", key=key, params={"limit": 2})
    assert page.json["pagination"]["hasMore"] is True
    after = page.json["pagination"]["nextCursor"]
    rest = client.get(f"{base}/deliveries", key=key, params={"cursor": after}).json["data"]
    assert [d["id"] for d in page.json["data"] + rest] == [d["id"] for d in log]
    body = orjson.dumps(log[0]["payload"])
    assert b" " not in body  # compact


def test_concurrent_consumers_create_each_delivery_exactly_once(
    client: CheckedClient, new_account: Any, ledger: LedgerApplication
) -> None:
    account = new_account()
    key = account.live.api_key
    tenant = UUID(account.live.tenant_id)
    hooks = [new_webhook(client, key, events=["product.*"]) for _ in range(2)]
    products = [new_product(client, key) for _ in range(30)]
    outbox = WebhookOutbox(ledger, batch=7)

    def drain() -> None:
        while outbox.consume(tenant) or tenant in outbox.tenants_behind():
            pass

    threads = [threading.Thread(target=drain) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with ledger.reading(tenant) as curs:
        rows = curs.execute(
            "SELECT endpoint_id, message_id, seq FROM webhook_deliveries ORDER BY seq"
        ).fetchall()
        head = curs.execute("SELECT position FROM webhook_outbox_heads").fetchone()
        log = curs.execute("SELECT position FROM log_heads").fetchone()
    pairs = [(r["endpoint_id"], r["message_id"]) for r in rows]
    assert len(pairs) == len(set(pairs)) == 2 * len(products)
    assert {str(e) for e, _ in pairs} == {h["id"] for h in hooks}
    assert head is not None
    assert log is not None
    assert head["position"] == log["position"]
