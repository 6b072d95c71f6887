"""PostgreSQL stops under load and comes back: 503s only, recovery without a restart of
ours, and no acknowledged write lost (ARCHITECTURE.md §8, API.md §2 `UNAVAILABLE`).

The database is an embedded PostgreSQL of this test's own (never the machine's shared
server). A real `licentric serve` takes validations, license creations and machine
activations from a few threads while the database is stopped for a few seconds and
started again. Every answer must be 2xx or a 503 `UNAVAILABLE` with `Retry-After`; the
service must recover by itself; every id answered with 201 must be in the ledger. How
long the 503s took is recorded in the test output, not asserted (no timing assertions).
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
import requests

from ledger.store.log import verify_chain
from ledger.store.migrate import migrate
from tests.integration.ledger.helpers import app_connection
from tests.integration.ledger.helpers import whole_log
from tests.support.processes import ServerProcess
from tests.support.processes import running_server
from tests.support.processes import server_env
from tests.support.services import own_embedded_postgres
from tests.support.services import run_embedded_postgres

ADMIN_TOKEN = "restart-operator-" + secrets.token_hex(16)
WRITERS = 2
VALIDATORS = 2
OUTAGE_SECONDS = 3.0
# After the restart, each worker thread must see this many successes in a row.
RECOVERED_AFTER = 5
RECOVERY_DEADLINE_SECONDS = 30.0


@pytest.fixture
def database() -> Iterator[tuple[str, Path]]:
    with own_embedded_postgres() as (url, data_dir):
        migrate(url)
        yield url, data_dir


@dataclass
class Outcome:
    kind: str  # validate | license | machine
    started: float
    seconds: float
    status: int | None  # None: no HTTP answer at all
    body: dict[str, Any] = field(default_factory=dict)
    retry_after: str | None = None
    error: str | None = None


@dataclass
class Load:
    """Requests from a few threads until told to stop; every outcome is kept."""

    server: ServerProcess
    api_key: str
    license_key: str
    product_id: str
    policy_id: str
    outcomes: list[Outcome] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _call(
        self, http: requests.Session, kind: str, path: str, body: Any, auth: str | None
    ) -> Outcome:
        started = time.monotonic()
        headers = {"Authorization": auth} if auth else {}
        try:
            response = http.post(self.server.url(path), json=body, headers=headers, timeout=15)
        except requests.RequestException as exc:
            return Outcome(kind, started, time.monotonic() - started, None, error=repr(exc))
        return Outcome(
            kind,
            started,
            time.monotonic() - started,
            response.status_code,
            response.json() if response.content else {},
            response.headers.get("Retry-After"),
        )

    def _request(self, http: requests.Session, kind: str) -> Outcome:
        if kind == "validate":
            body = {"key": self.license_key}  # as the SDK sends it: no credential
            return self._call(http, kind, "/api/v1/licenses/validate-key", body, None)
        if kind == "license":
            body = {"productId": self.product_id, "policyId": self.policy_id}
            return self._call(http, kind, "/api/v1/licenses", body, f"Bearer {self.api_key}")
        body = {"fingerprint": "restart-" + secrets.token_hex(8)}
        return self._call(http, kind, "/api/v1/machines", body, f"License {self.license_key}")

    def worker(self, kinds: tuple[str, ...]) -> None:
        with requests.Session() as http:
            turn = 0
            while not self.stop.is_set():
                outcome = self._request(http, kinds[turn % len(kinds)])
                turn += 1
                with self.lock:
                    self.outcomes.append(outcome)

    def run(self) -> list[threading.Thread]:
        plans = [("license", "machine")] * WRITERS + [("validate",)] * VALIDATORS
        threads = [threading.Thread(target=self.worker, args=(p,), daemon=True) for p in plans]
        for thread in threads:
            thread.start()
        return threads

    def since(self, moment: float) -> list[Outcome]:
        with self.lock:
            return [o for o in self.outcomes if o.started >= moment]


def _setup(server: ServerProcess) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """An account (through the operator API), a product, an unlimited policy, a license."""
    opened = requests.post(
        server.url("/api/v1/admin/accounts"),
        json={"name": "restart"},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=30,
    )
    assert opened.status_code == 201, opened.text
    account_key = opened.json()["environments"]["live"]["apiKey"]
    auth = {"Authorization": f"Bearer {account_key}"}

    def create(path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = requests.post(server.url(path), json=body, headers=auth, timeout=30)
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    product = create("/api/v1/products", {"name": "Restart", "code": "restart"})
    # Unlimited seats, no fingerprint required: every activation and validation succeeds.
    policy = create(
        "/api/v1/policies",
        {"productId": product["id"], "name": "Unlimited", "requireFingerprint": False},
    )
    license_ = create("/api/v1/licenses", {"productId": product["id"], "policyId": policy["id"]})
    return account_key, policy, license_


def _wait_until_recovered(load: Load, restarted: float) -> None:
    deadline = restarted + RECOVERY_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        outcomes = load.since(restarted)
        streaks = {}
        for outcome in outcomes:
            ok = outcome.status is not None and outcome.status < 300
            streaks[outcome.kind] = streaks.get(outcome.kind, 0) + 1 if ok else 0
        if len(streaks) == 3 and min(streaks.values()) >= RECOVERED_AFTER:
            return
        time.sleep(0.2)
    pytest.fail(f"not recovered {RECOVERY_DEADLINE_SECONDS} s after the restart")


def _report(outcomes: list[Outcome]) -> str:
    refused = [o for o in outcomes if o.status == 503]
    slowest = max((o.seconds for o in refused), default=0.0)
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[f"{o.kind} {o.status}"] = counts.get(f"{o.kind} {o.status}", 0) + 1
    return json.dumps(
        {"answers": counts, "503s": len(refused), "slowest_503_seconds": round(slowest, 3)},
        sort_keys=True,
    )


def _tenant_of(database_url: str, license_id: str) -> str:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT tenant_id FROM events WHERE stream_id = %s LIMIT 1", (license_id,)
        ).fetchone()
    assert row is not None
    return str(row[0])


def test_database_restart_under_load_loses_nothing_acknowledged(
    database: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database_url, data_dir = database
    env = server_env(
        DATABASE_URL=database_url,
        LICENTRIC_MASTER_KEY=base64.b64encode(secrets.token_bytes(32)).decode(),
        LICENTRIC_ADMIN_TOKEN=ADMIN_TOKEN,
        LICENTRIC_DATA_DIR=str(tmp_path / "data"),
    )
    with running_server(env, log_dir=tmp_path, threads=4) as server:
        api_key, policy, license_ = _setup(server)
        load = Load(server, api_key, license_["key"], policy["productId"], policy["id"])
        threads = load.run()
        try:
            time.sleep(1.0)
            run_embedded_postgres("stop", data_dir)
            time.sleep(OUTAGE_SECONDS)
            run_embedded_postgres("start", data_dir)
            _wait_until_recovered(load, time.monotonic())
        finally:
            load.stop.set()
            for thread in threads:
                thread.join(timeout=30)
        ready = requests.get(server.url("/api/v1/ready"), timeout=10)
        assert ready.status_code == 200, ready.text
        acknowledged = _read_back(server, api_key, load.outcomes)

    outcomes = load.outcomes
    with capsys.disabled():
        print(f"\ndatabase restart: {_report(outcomes)}")
    unanswered = [o for o in outcomes if o.status is None]
    assert not unanswered, unanswered[:3]
    assert {o.status for o in outcomes} <= {200, 201, 503}, _report(outcomes)
    refused = [o for o in outcomes if o.status == 503]
    assert refused, "the outage was never seen: no 503 at all"
    for outcome in refused:
        assert outcome.body["code"] == "UNAVAILABLE", outcome.body
        assert outcome.retry_after is not None
        assert int(outcome.retry_after) >= 1

    # Every acknowledged write is in the ledger, read straight from the events table.
    tenant = _tenant_of(database_url, license_["id"])
    with app_connection(database_url) as conn:
        events = whole_log(conn, UUID(tenant))
    assert verify_chain(events) is None
    streams = {str(e.stream_id) for e in events}
    # Machines live in their license's stream: their ids are in its events' data.
    license_history = json.dumps([e.data for e in events if str(e.stream_id) == license_["id"]])
    for kind, resource_id in acknowledged:
        if kind == "license":
            assert resource_id in streams, resource_id
        else:
            assert resource_id in license_history, resource_id


def _read_back(
    server: ServerProcess, api_key: str, outcomes: list[Outcome]
) -> list[tuple[str, str]]:
    """The ids answered 201, each read back through the API as the owner."""
    acknowledged = [
        (o.kind, str(o.body["data"]["id"]))
        for o in outcomes
        if o.status == 201 and o.kind in ("license", "machine")
    ]
    assert acknowledged
    auth = {"Authorization": f"Bearer {api_key}"}
    with requests.Session() as http:
        for kind, resource_id in acknowledged:
            path = f"/api/v1/{'licenses' if kind == 'license' else 'machines'}/{resource_id}"
            response = http.get(server.url(path), headers=auth, timeout=10)
            assert response.status_code == 200, (kind, resource_id, response.text)
    return acknowledged
