"""Webhooks end to end: a real server, a real worker and a local receiver.

Every delivery the receiver gets is verified with the official SDK's
`licentric.webhook.verify_webhook` and with the `standardwebhooks` package. Covers the
envelope, the delivery log, test messages, secret rotation, 410 disabling an endpoint
and `recover` re-sending everything since a moment, in order.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from api.app import ledger_application
from api.config import Config
from ledger.accounts import open_account
from ledger.application import LedgerApplication
from ledger.domain.codes import EnvironmentName
from tests.support.processes import ServerProcess
from tests.support.processes import running_server
from tests.support.processes import server_env
from tests.support.webhooks import Behaviour
from tests.support.webhooks import Receiver
from tests.support.webhooks import WorkerProcess
from tests.support.webhooks import running_receiver
from tests.support.webhooks import running_workers
from tests.support.webhooks import wait_for
from tests.support.webhooks import worker_env

pytestmark = pytest.mark.slow
MASTER_KEY = base64.b64encode(secrets.token_bytes(32)).decode()


@pytest.fixture(scope="module")
def database(fresh_database: Callable[[], str]) -> str:
    return fresh_database()


@pytest.fixture(scope="module")
def api_key(database: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    config = Config.from_env({"DATABASE_URL": database, "LICENTRIC_MASTER_KEY": MASTER_KEY})
    ledger: LedgerApplication = ledger_application(config)
    try:
        opened = open_account(
            ledger,
            name="webhooks-e2e",
            master_key=config.master_key,
            pepper=config.pepper,
            at=datetime.now(UTC),
        )
    finally:
        ledger.close()
    return opened.environments[EnvironmentName.LIVE].api_key


@pytest.fixture(scope="module")
def server(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = server_env(
        DATABASE_URL=database,
        LICENTRIC_MASTER_KEY=MASTER_KEY,
        LICENTRIC_WEBHOOK_ALLOW_PRIVATE="true",
        LICENTRIC_DATA_DIR=str(tmp_path_factory.mktemp("data")),
    )
    with running_server(env, log_dir=tmp_path_factory.mktemp("server")) as process:
        yield process


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with running_receiver(Receiver()) as running:
        yield running


@pytest.fixture(scope="module")
def worker(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    env = worker_env(
        database, MASTER_KEY, LICENTRIC_WEBHOOK_RETRY_SCALE="0.001", LICENTRIC_WEBHOOK_TIMEOUT="2"
    )
    with running_workers(env, tmp_path_factory.mktemp("worker")) as workers:
        yield workers[0]


class Api:
    def __init__(self, server: ServerProcess, key: str) -> None:
        self._server = server
        self._headers = {"Authorization": f"Bearer {key}"}

    def call(self, method: str, path: str, expect: int = 200, **kw: Any) -> Any:
        response = requests.request(
            method, self._server.url("/api/v1" + path), headers=self._headers, timeout=10, **kw
        )
        assert response.status_code == expect, response.text
        if not response.content:
            return None
        body = response.json()
        return body.get("data", body)


@pytest.fixture(scope="module")
def api(server: ServerProcess, api_key: str) -> Api:
    return Api(server, api_key)


def new_license(api: Api) -> dict[str, Any]:
    product = api.call("POST", "/products", 201, json={"name": "P", "code": secrets.token_hex(4)})
    policy = api.call("POST", "/policies", 201, json={"productId": product["id"], "name": "Std"})
    body = {"productId": product["id"], "policyId": policy["id"], "name": "L"}
    return dict(api.call("POST", "/licenses", 201, json=body))


def test_every_delivery_verifies_and_carries_the_envelope(
    api: Api, receiver: Receiver, worker: WorkerProcess
) -> None:
    hook = api.call("POST", "/webhooks", 201, json={"url": receiver.url("/all"), "events": ["*"]})
    receiver.register("/all", hook["secret"])
    license_ = new_license(api)
    api.call("POST", f"/licenses/{license_['id']}/suspend")
    api.call("POST", f"/licenses/{license_['id']}/reinstate")
    api.call("POST", f"/webhooks/{hook['id']}/test")

    expected = ["product.created", "policy.created", "license.created", "license.suspended",
                "license.reinstated", "webhook.test"]  # fmt: skip
    wait_for(lambda: len(receiver.accepted("/all")) >= len(expected), timeout=60)
    accepted = receiver.accepted("/all")
    assert receiver.invalid == []
    assert sorted(r.type for r in accepted) == sorted(expected)
    by_type = {r.type: r for r in accepted}
    assert by_type["license.suspended"].data["status"] == "suspended"
    assert by_type["license.reinstated"].data["status"] == "active"
    assert by_type["license.created"].data["id"] == license_["id"]
    assert "key" not in by_type["license.created"].data
    sequences = [by_type[t].sequence for t in expected[2:5]]
    assert sequences == sorted(sequences)
    assert by_type["webhook.test"].data["id"] == hook["id"]

    def log() -> list[dict[str, Any]]:
        return list(api.call("GET", f"/webhooks/{hook['id']}/deliveries", params={"limit": 100}))

    # The receiver answers before the worker records the outcome.
    wait_for(lambda: {d["status"] for d in log()} == {"delivered"}, timeout=30)
    assert len(log()) == len(expected)
    attempt = log()[0]["attempts"][0]
    assert attempt["httpStatus"] == 200
    assert attempt["latencyMs"] >= 0
    assert attempt["response"] == '{"ok":true}'


def test_rotated_secret_signs_the_next_deliveries(
    api: Api, receiver: Receiver, worker: WorkerProcess
) -> None:
    hook = api.call("POST", "/webhooks", 201, json={"url": receiver.url("/rot"), "events": ["*"]})
    rotated = api.call("POST", f"/webhooks/{hook['id']}/rotate-secret")
    receiver.register("/rot", rotated["secret"])  # the old secret is not accepted
    api.call("POST", f"/webhooks/{hook['id']}/test")
    wait_for(lambda: len(receiver.accepted("/rot")) == 1, timeout=30)
    assert receiver.invalid == []


def test_gone_disables_the_endpoint_and_recover_resends_in_order(
    api: Api, receiver: Receiver, worker: WorkerProcess
) -> None:
    since = datetime.now(UTC).isoformat()
    hook = api.call(
        "POST", "/webhooks", 201, json={"url": receiver.url("/gone"), "events": ["license.*"]}
    )
    receiver.register("/gone", hook["secret"], Behaviour(gone=True))
    license_ = new_license(api)

    def disabled() -> bool:
        return not api.call("GET", f"/webhooks/{hook['id']}")["enabled"]

    wait_for(disabled, timeout=30)
    assert api.call("GET", f"/webhooks/{hook['id']}")["disabledReason"] == "HTTP_410_GONE"
    # While disabled nothing is sent; the events are kept as `skipped` for recover.
    api.call("POST", f"/licenses/{license_['id']}/suspend")
    api.call("POST", f"/licenses/{license_['id']}/reinstate")
    wait_for(lambda: len(api.call("GET", f"/webhooks/{hook['id']}/deliveries")) == 3, timeout=30)
    log = api.call("GET", f"/webhooks/{hook['id']}/deliveries")
    assert [d["status"] for d in log] == ["failed", "skipped", "skipped"]
    assert log[0]["attempts"][0]["httpStatus"] == 410

    receiver.behaviours["/gone"] = Behaviour()
    api.call("PATCH", f"/webhooks/{hook['id']}", json={"enabled": True})
    recovered = api.call("POST", f"/webhooks/{hook['id']}/recover", json={"since": since})
    assert recovered["enqueued"] == 3
    wait_for(lambda: len(receiver.accepted("/gone")) == 3, timeout=30)
    accepted = receiver.accepted("/gone")
    assert [r.type for r in accepted] == ["license.created", "license.suspended",
                                          "license.reinstated"]  # fmt: skip
    assert [r.sequence for r in accepted] == sorted(r.sequence for r in accepted)
    assert receiver.invalid == []


def test_private_targets_are_refused_unless_allowed(
    database: str, tmp_path_factory: pytest.TempPathFactory, api_key: str
) -> None:
    env = server_env(
        DATABASE_URL=database,
        LICENTRIC_MASTER_KEY=MASTER_KEY,
        LICENTRIC_DATA_DIR=str(tmp_path_factory.mktemp("data")),
    )
    with running_server(env, log_dir=Path(tmp_path_factory.mktemp("strict"))) as strict:
        api = Api(strict, api_key)
        refused = api.call(
            "POST", "/webhooks", 422, json={"url": "http://127.0.0.1:9/x", "events": ["*"]}
        )
        assert refused["details"]["reason"] == "WEBHOOK_URL_NOT_ALLOWED"
