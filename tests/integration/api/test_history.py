"""The ledger's own surface (API.md §8): a license's history, `asOf`, the environment's
feed and the signed head of its hash chain."""

from __future__ import annotations

import random
import threading
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any
from urllib.parse import quote
from uuid import UUID
from uuid import uuid4

import pytest

from api.app import create_app
from api.config import Config
from api.services import Services
from ledger.application import LedgerApplication
from ledger.audit.head import SignedHead
from ledger.audit.head import verify_head
from ledger.commands import licenses
from ledger.commands.base import Actor
from ledger.commands.base import CommandContext
from ledger.domain.codes import ValidationCode
from ledger.domain.validation_record import ValidationRecord
from ledger.store.hashchain import GENESIS_HASH
from tests.integration.api.catalogue import new_policy
from tests.integration.api.catalogue import new_product
from tests.integration.api.catalogue import scoped_key
from tests.integration.api.conftest import Account
from tests.integration.api.conftest import CheckedClient
from tests.integration.api.conftest import Tenant

V1 = "/api/v1"


class Clock:
    """A clock the test moves: each step happens one second after the previous."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)

    def __call__(self) -> datetime:
        return self.now

    def tick(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
def timed(config: Config, ledger: LedgerApplication, clock: Clock) -> CheckedClient:
    return CheckedClient(create_app(config, services=Services(ledger, config, clock=clock)))


def _issue(client: CheckedClient, key: str, **policy: Any) -> dict[str, Any]:
    product_id = new_product(client, key)
    policy_id = new_policy(client, key, product_id, **policy)["id"]
    created = client.post(
        f"{V1}/licenses", key=key, json={"productId": product_id, "policyId": policy_id}
    )
    assert created.status_code == 201, created.text
    return dict(created.json["data"])


def _history(client: CheckedClient, key: str, license_id: str, limit: int = 100) -> list[Any]:
    events: list[Any] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"{V1}/licenses/{license_id}/events", key=key, params=params)
        assert page.status_code == 200, page.text
        events.extend(page.json["data"])
        cursor = page.json["pagination"]["nextCursor"]
        if not page.json["pagination"]["hasMore"]:
            return events


def test_a_license_history_holds_its_machines_usage_and_validations(
    client: CheckedClient, ledger: LedgerApplication, acme: Account
) -> None:
    key = acme.live.api_key
    license_ = _issue(client, key, maxMachines=2)
    license_id = license_["id"]
    request = {"X-Request-Id": "req-suspend-1"}
    assert (
        client.post(f"{V1}/licenses/{license_id}/suspend", key=key, headers=request).status_code
        == 200
    )
    assert client.post(f"{V1}/licenses/{license_id}/reinstate", key=key).status_code == 200
    machine = client.post(
        f"{V1}/machines", key=key, json={"licenseId": license_id, "fingerprint": "fp-history-1"}
    )
    assert machine.status_code == 201, machine.text
    assert (
        client.post(f"{V1}/licenses/{license_id}/usage", key=key, json={"increment": 2}).status_code
        == 200
    )
    tenant = UUID(acme.live.tenant_id)
    record = ValidationRecord.record(
        id=uuid4(), valid=True, license_id=UUID(license_id), code=ValidationCode.VALID,
        request_id="req-validate-1", at=datetime.now(UTC),
    )  # fmt: skip
    ledger.save_in(tenant, record, metadata={"actor": {"type": "system", "id": "validation"}})
    assert client.delete(f"{V1}/licenses/{license_id}", key=key).status_code == 204

    history = _history(client, key, license_id, limit=2)
    types = [e["type"] for e in history]
    expected = [
        "license.created", "license.suspended", "license.reinstated",
        "license.machine_activated", "license.usage_incremented", "validation.success",
        "license.deleted",
    ]  # fmt: skip
    assert [t for t in types if t in expected] == expected
    sequences = [e["sequence"] for e in history]
    assert sequences == sorted(set(sequences))  # oldest first, each once
    suspended = history[types.index("license.suspended")]
    assert suspended["requestId"] == "req-suspend-1"
    assert suspended["actor"]["type"] == "api_key"
    assert suspended["actor"]["id"]
    validation = history[types.index("validation.success")]
    assert validation["actor"] == {"type": "system", "id": "validation"}
    assert validation["requestId"] == "req-validate-1"
    assert validation["data"]["licenseId"] == license_id
    created = history[0]["data"]
    assert created["productId"] == license_["productId"]
    assert not any("hash" in field.lower() for field in created)
    activated = history[types.index("license.machine_activated")]["data"]
    assert activated["fingerprint"] == "fp-history-1"
    # A deleted license is gone from reads, not from the ledger.
    assert client.get(f"{V1}/licenses/{license_id}", key=key).status_code == 404


def test_history_of_an_unknown_id_or_of_another_resource_is_404(
    client: CheckedClient, acme: Account
) -> None:
    key = acme.live.api_key
    product_id = new_product(client, key)
    for resource in (str(uuid4()), product_id):
        assert client.get(f"{V1}/licenses/{resource}/events", key=key).status_code == 404


def test_history_cursors_are_checked(client: CheckedClient, acme: Account, globex: Account) -> None:
    license_id = _issue(client, acme.live.api_key)["id"]
    page = client.get(
        f"{V1}/licenses/{license_id}/events", key=acme.live.api_key, params={"limit": 1}
    )
    cursor = page.json["pagination"]["nextCursor"]
    other = _issue(client, globex.live.api_key)["id"]
    for bad in (cursor[:-2] + "AA", "not-a-cursor", "x" * 27):
        refused = client.get(
            f"{V1}/licenses/{license_id}/events", key=acme.live.api_key, params={"cursor": bad}
        )
        assert refused.status_code == 400, bad
    # A cursor of one environment means nothing in another.
    foreign = client.get(
        f"{V1}/licenses/{other}/events", key=globex.live.api_key, params={"cursor": cursor}
    )
    assert foreign.status_code == 400


def _machine(license_id: str, fingerprint: str) -> dict[str, str]:
    return {"licenseId": license_id, "fingerprint": fingerprint}


def test_as_of_each_step_equals_the_license_as_it_was_then(
    timed: CheckedClient, clock: Clock, acme: Account
) -> None:
    key = acme.live.api_key
    clock.tick()
    product_id = new_product(timed, key)
    policy_id = new_policy(timed, key, product_id, maxMachines=3)["id"]
    before = clock.tick()
    license_id = timed.post(
        f"{V1}/licenses", key=key, json={"productId": product_id, "policyId": policy_id}
    ).json["data"]["id"]
    base = f"{V1}/licenses/{license_id}"
    steps = [
        lambda: timed.post(f"{base}/suspend", key=key),
        lambda: timed.post(f"{base}/reinstate", key=key),
        lambda: timed.post(f"{V1}/machines", key=key, json=_machine(license_id, "fp-asof-1")),
        lambda: timed.patch(f"{V1}/policies/{policy_id}", key=key, json={"maxMachines": 5}),
        lambda: timed.post(f"{V1}/machines", key=key, json=_machine(license_id, "fp-asof-2")),
        lambda: timed.patch(base, key=key, json={"name": "renamed", "metadata": {"a": 1}}),
        lambda: timed.post(f"{base}/usage", key=key, json={"increment": 3}),
        lambda: timed.post(f"{base}/revoke", key=key),
    ]  # fmt: skip
    captured = [(clock.now, timed.get(base, key=key).json["data"])]
    for step in steps:
        clock.tick()
        assert step().status_code in (200, 201)
        captured.append((clock.now, timed.get(base, key=key).json["data"]))
    clock.tick()
    assert timed.delete(base, key=key).status_code == 204
    clock.tick()

    for at, live in captured:
        as_of = timed.get(base, key=key, params={"asOf": at.isoformat()})
        assert as_of.status_code == 200, as_of.text
        assert as_of.json["data"] == live, at
    assert captured[3][1]["machines"][0]["fingerprint"] == "fp-asof-1"
    assert captured[3][1]["policy"]["maxMachines"] == 3
    assert captured[4][1]["policy"]["maxMachines"] == 5
    # Before it existed, and after it was deleted: not found, like a live read.
    for at in (before - timedelta(milliseconds=1), clock.now):
        gone = timed.get(base, key=key, params={"asOf": at.isoformat()})
        assert gone.status_code == 404, at
    # A time with `Z`, or with an unencoded `+`, is read alike.
    at = captured[2][0]
    for text in (at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), quote(at.isoformat(), safe=":+")):
        same = timed.get(base, key=key, params={"asOf": text.replace("%2B", "+")})
        assert same.json["data"] == captured[2][1]


def test_as_of_must_be_a_past_time_with_an_offset(
    timed: CheckedClient, clock: Clock, acme: Account
) -> None:
    license_id = _issue(timed, acme.live.api_key)["id"]
    for text in (
        "yesterday",
        "2026-01-01T00:00:00",
        (clock.now + timedelta(seconds=5)).isoformat(),
    ):
        refused = timed.get(
            f"{V1}/licenses/{license_id}", key=acme.live.api_key, params={"asOf": text}
        )
        assert refused.status_code == 400, text
        assert refused.json["details"]["issues"][0]["path"] == ["asOf"]


def _feed(
    client: CheckedClient, key: str, after: str | None = None, **params: Any
) -> tuple[list[dict[str, Any]], str, bool]:
    query = {**params, **({"after": after} if after else {})}
    page = client.get(f"{V1}/events", key=key, params=query)
    assert page.status_code == 200, page.text
    return (
        page.json["data"],
        page.json["pagination"]["nextCursor"],
        page.json["pagination"]["hasMore"],
    )


def test_the_feed_is_the_whole_ledger_in_order_and_filters_by_type(
    client: CheckedClient, new_account: Any
) -> None:
    tenant = new_account().live
    key = tenant.api_key
    license_id = _issue(client, key)["id"]
    client.post(f"{V1}/licenses/{license_id}/suspend", key=key)
    everything, cursor, more = _feed(client, key, limit=1000)
    assert not more
    assert [e["sequence"] for e in everything] == list(range(1, len(everything) + 1))
    assert everything[0]["type"] == "account.created"
    assert everything[-1]["type"] == "license.suspended"

    licenses_only, _, _ = _feed(client, key, types="license.*,product.created")
    wanted = [
        e for e in everything if e["type"].startswith("license.") or e["type"] == "product.created"
    ]
    assert licenses_only == wanted
    assert {"product.created", "license.created", "license.suspended"} <= {
        e["type"] for e in wanted
    }
    # Nothing new: the cursor stays; after a new event, exactly that one comes.
    again, same, _ = _feed(client, key, after=cursor)
    assert again == []
    assert same == cursor
    client.post(f"{V1}/licenses/{license_id}/reinstate", key=key)
    new, _, _ = _feed(client, key, after=cursor)
    assert [e["type"] for e in new] == ["license.reinstated"]
    # A filter that matched nothing still moves the cursor past what it skipped.
    none, moved, _ = _feed(client, key, after=cursor, types="webhook_endpoint.*")
    assert none == []
    assert _feed(client, key, after=moved)[0] == []

    for bad in ({"types": "license"}, {"types": "DROP TABLE"}, {"limit": 1001}, {"after": "zz"}):
        assert client.get(f"{V1}/events", key=key, params=bad).status_code == 400, bad


def test_the_signed_head_commits_to_the_whole_feed(client: CheckedClient, new_account: Any) -> None:
    tenant = new_account().live
    _issue(client, tenant.api_key)
    head = client.get(f"{V1}/audit/head", key=tenant.api_key)
    assert head.status_code == 200, head.text
    signed = SignedHead.from_document(head.json["data"])
    verify_head(signed, tenant.public_key)
    events, _, _ = _feed(client, tenant.api_key, limit=1000)
    assert signed.position == events[-1]["sequence"]
    assert str(signed.environment_id) == tenant.tenant_id


def test_scopes(
    client: CheckedClient, ledger: LedgerApplication, config: Config, acme: Account
) -> None:
    license_id = _issue(client, acme.live.api_key)["id"]
    readers = scoped_key(ledger, config, acme.live, ["licenses:read"])
    auditors = scoped_key(ledger, config, acme.live, ["events:read"])
    history = f"{V1}/licenses/{license_id}/events"
    assert client.get(history, key=readers).status_code == 200
    assert client.get(history, key=auditors).status_code == 403
    assert (
        client.get(
            f"{V1}/licenses/{license_id}",
            key=readers,
            params={"asOf": datetime.now(UTC).isoformat()},
        ).status_code
        == 200
    )
    for path in (f"{V1}/events", f"{V1}/audit/head"):
        assert client.get(path, key=auditors).status_code == 200
        assert client.get(path, key=readers).status_code == 403


def test_feeds_and_heads_are_per_environment(
    client: CheckedClient, acme: Account, globex: Account
) -> None:
    _issue(client, acme.live.api_key)
    for intruder in (globex.live, acme.test):
        events, _, _ = _feed(client, intruder.api_key, limit=1000)
        assert {e["streamId"] for e in events}.isdisjoint(
            {e["streamId"] for e in _feed(client, acme.live.api_key, limit=1000)[0]}
        )
        head = client.get(f"{V1}/audit/head", key=intruder.api_key).json["data"]
        assert head["environmentId"] == intruder.tenant_id


def test_a_consumer_resuming_from_stored_cursors_gets_every_event_once_in_order(
    config: Config, ledger: LedgerApplication, new_account: Any, tmp_path: Any
) -> None:
    tenant = new_account().live
    tenant_id = UUID(tenant.tenant_id)
    setup = CheckedClient(create_app(config, services=Services(ledger, config)))
    ids = [UUID(_issue(setup, tenant.api_key)["id"]) for _ in range(4)]

    def write(license_id: UUID) -> None:
        for i in range(30):
            ctx = _context(tenant, i)
            if i % 3 == 2:
                licenses.increment_usage(ledger, ctx, license_id, 1)
            elif i % 3 == 0:
                licenses.suspend_license(ledger, ctx, license_id)
            else:
                licenses.reinstate_license(ledger, ctx, license_id)

    store = tmp_path / "cursor"  # where the consumer keeps its place between runs
    seen: list[dict[str, Any]] = []
    rnd = random.Random(4)

    def run_consumer(pages: int) -> bool:
        """One run of the consumer process: a fresh app, the stored cursor, a few pages."""
        client = CheckedClient(create_app(config, services=Services(ledger, config)))
        more = True
        for _ in range(pages):
            after = store.read_text() if store.exists() else None
            data, cursor, more = _feed(client, tenant.api_key, after, limit=rnd.randint(1, 9))
            seen.extend(data)
            store.write_text(cursor)
        return more

    writers = [threading.Thread(target=write, args=(i,)) for i in ids]
    for writer in writers:
        writer.start()
    while any(w.is_alive() for w in writers):
        run_consumer(pages=3)
    for writer in writers:
        writer.join()
    while run_consumer(pages=5):
        pass
    run_consumer(pages=1)

    with ledger.reading(tenant_id) as curs:
        logged = [
            str(r["event_id"])
            for r in curs.execute("SELECT event_id FROM events ORDER BY position")
        ]
    assert [e["id"] for e in seen] == logged
    assert [e["sequence"] for e in seen] == list(range(1, len(logged) + 1))
    assert len(logged) >= 4 * 30


def _context(tenant: Tenant, i: int) -> CommandContext:
    return CommandContext(
        UUID(tenant.tenant_id), Actor("api_key", "writer"), datetime.now(UTC), request_id=f"w{i}"
    )


def test_head_hash_is_the_chain_over_the_feed(
    client: CheckedClient, ledger: LedgerApplication, new_account: Any
) -> None:
    tenant = new_account().live
    _issue(client, tenant.api_key)
    with ledger.reading(UUID(tenant.tenant_id)) as curs:
        rows = curs.execute("SELECT position, hash FROM events ORDER BY position").fetchall()
    head = client.get(f"{V1}/audit/head", key=tenant.api_key).json["data"]
    assert head["position"] == rows[-1]["position"]
    assert head["hash"] == bytes(rows[-1]["hash"]).hex()
    assert bytes(rows[-1]["hash"]) != GENESIS_HASH


def test_another_environments_license_is_not_found_at_any_time(
    client: CheckedClient, acme: Account, globex: Account
) -> None:
    license_id = _issue(client, acme.live.api_key)["id"]
    now = datetime.now(UTC).isoformat()
    for intruder in (globex.live, acme.test):
        for path, params in (
            (f"{V1}/licenses/{license_id}", {"asOf": now}),
            (f"{V1}/licenses/{license_id}/events", {}),
        ):
            found = client.get(path, key=intruder.api_key, params=params)
            assert found.status_code == 404, (path, intruder.environment)
