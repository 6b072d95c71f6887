"""`/machines` (API.md §4 Machines): activation, seats, uniqueness, heartbeats, access."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from uuid import UUID
from uuid import uuid4

import pytest

from api.app import create_app
from api.config import Config
from api.services import Services
from ledger.application import LedgerApplication
from ledger.commands import licenses
from ledger.commands.api_keys import create_api_key
from ledger.domain.templates import PolicySettings
from tests.integration.api.conftest import ADMIN_TOKEN
from tests.integration.api.conftest import Account
from tests.integration.api.conftest import CheckedClient
from tests.integration.api.conftest import Tenant
from tests.support.machines import FakeClock
from tests.support.machines import IssuedLicense
from tests.support.machines import context
from tests.support.machines import create_policy
from tests.support.machines import event_types
from tests.support.machines import issue_license
from workers.timers import HeartbeatDeadlines

MACHINES = "/api/v1/machines"


@pytest.fixture(scope="module")
def config(database: str, tmp_path_factory: pytest.TempPathFactory) -> Config:
    # POST /machines is limited to 10/minute per IP by default; this module activates more.
    return Config.from_env(
        {
            "DATABASE_URL": database,
            "LICENTRIC_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
            "LICENTRIC_ADMIN_TOKEN": ADMIN_TOKEN,
            "LICENTRIC_DATA_DIR": str(tmp_path_factory.mktemp("data")),
            "LICENTRIC_RATE_LIMITS": "off",
        }
    )


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="module")
def client(config: Config, ledger: LedgerApplication, clock: FakeClock) -> CheckedClient:
    return CheckedClient(create_app(config, services=Services(ledger, config, clock=clock)))


@pytest.fixture(scope="module")
def new_license(
    ledger: LedgerApplication, config: Config, acme: Account, clock: FakeClock
) -> Callable[..., IssuedLicense]:
    def make(tenant: Tenant | None = None, **kwargs: Any) -> IssuedLicense:
        tenant_id = (tenant or acme.live).tenant_id
        kwargs.setdefault("at", clock())
        return issue_license(ledger, config.pepper, tenant_id, **kwargs)

    return make


def fingerprint() -> str:
    return "fp-" + secrets.token_hex(8)


def activate(client: CheckedClient, lic: IssuedLicense, fp: str | None = None, **body: Any) -> Any:
    return client.post(MACHINES, auth=lic.auth, json={"fingerprint": fp or fingerprint(), **body})


# --- activation -----------------------------------------------------------------------


def test_the_sdk_activation_body_with_a_license_key_creates_a_machine(
    client: CheckedClient, new_license: Callable[..., IssuedLicense], ledger: LedgerApplication
) -> None:
    lic = new_license()
    fp = fingerprint()

    created = activate(client, lic, fp, name="laptop", platform="linux")

    assert created.status_code == 201, created.text
    machine = created.json["data"]
    assert machine["licenseId"] == str(lic.license_id)
    assert (machine["fingerprint"], machine["name"], machine["platform"]) == (fp, "laptop", "linux")
    assert machine["heartbeatStatus"] == "NOT_STARTED"
    assert machine["lastHeartbeatAt"] is None
    assert machine["ipAddress"] == "127.0.0.1"
    assert machine["createdAt"].endswith("Z")
    assert event_types(ledger, lic.tenant_id, lic.license_id)[-1] == "license.machine_activated"


def test_activating_the_same_fingerprint_again_returns_the_machine(
    client: CheckedClient, new_license: Callable[..., IssuedLicense], ledger: LedgerApplication
) -> None:
    lic = new_license(settings={"max_machines": 1})
    fp = fingerprint()
    first = activate(client, lic, fp)

    again = activate(client, lic, fp, name="retried")

    assert again.status_code == 200, again.text
    assert again.json["data"] == first.json["data"]
    assert (
        event_types(ledger, lic.tenant_id, lic.license_id).count("license.machine_activated") == 1
    )


def test_an_api_key_activates_on_the_license_it_names(
    client: CheckedClient, new_license: Callable[..., IssuedLicense], acme: Account
) -> None:
    lic = new_license()
    body = {"fingerprint": fingerprint(), "hostname": "build-7", "cores": 16, "metadata": {"a": 1}}

    created = client.post(
        MACHINES, key=acme.live.api_key, json={**body, "licenseId": str(lic.license_id)}
    )
    missing = client.post(MACHINES, key=acme.live.api_key, json=body)
    unknown = client.post(MACHINES, key=acme.live.api_key, json={**body, "licenseId": str(uuid4())})

    assert created.status_code == 201, created.text
    assert created.json["data"]["hostname"] == "build-7"
    assert created.json["data"]["metadata"] == {"a": 1}
    assert missing.status_code == 400
    assert missing.json["details"]["issues"][0]["path"] == ["licenseId"]
    assert unknown.status_code == 422
    assert unknown.json["code"] == "REFERENCE_NOT_FOUND"


def test_an_api_key_without_machines_write_cannot_activate(
    client: CheckedClient,
    new_license: Callable[..., IssuedLicense],
    ledger: LedgerApplication,
    config: Config,
    acme: Account,
) -> None:
    lic = new_license()
    reader = create_api_key(
        ledger,
        context(acme.live.tenant_id),
        api_key_id=uuid4(),
        environment="live",
        name="reader",
        scopes=["machines:read"],
        expires_at=None,
        pepper=config.pepper,
    ).key

    refused = client.post(
        MACHINES, key=reader, json={"fingerprint": fingerprint(), "licenseId": str(lic.license_id)}
    )

    assert refused.status_code == 403
    assert refused.json["code"] == "FORBIDDEN"


@pytest.mark.parametrize(
    "body",
    [
        {"fingerprint": "short"},
        {"fingerprint": "x" * 257},
        {"fingerprint": "fp-12345678", "platform": "amiga"},
        {"fingerprint": "fp-12345678", "cores": 0},
        {"fingerprint": "fp-12345678", "metadata": []},
        {"fingerprint": "fp-12345678", "serial": "unknown field"},
        {"name": "no fingerprint"},
    ],
)
def test_malformed_activations_are_400(
    client: CheckedClient, new_license: Callable[..., IssuedLicense], body: dict[str, Any]
) -> None:
    result = client.post(MACHINES, auth=new_license().auth, json=body)

    assert result.status_code == 400, result.text
    assert result.json["code"] == "VALIDATION_ERROR"


def test_an_activation_replays_for_the_same_idempotency_key(
    client: CheckedClient, new_license: Callable[..., IssuedLicense]
) -> None:
    lic = new_license()
    headers = {"Idempotency-Key": "activate-" + secrets.token_hex(4)}
    body = {"fingerprint": fingerprint()}

    first = client.post(MACHINES, auth=lic.auth, json=body, headers=headers)
    again = client.post(MACHINES, auth=lic.auth, json=body, headers=headers)
    reused = client.post(
        MACHINES, auth=lic.auth, json={"fingerprint": fingerprint()}, headers=headers
    )

    assert first.status_code == 201
    assert (again.status_code, again.content) == (201, first.content)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert reused.json["code"] == "IDEMPOTENCY_KEY_REUSED"


# --- seats ----------------------------------------------------------------------------


def test_activation_beyond_seats_is_refused_and_recorded(
    client: CheckedClient, new_license: Callable[..., IssuedLicense], ledger: LedgerApplication
) -> None:
    lic = new_license(settings={"max_machines": 2})
    for _ in range(2):
        assert activate(client, lic).status_code == 201

    refused = activate(client, lic)

    assert refused.status_code == 422
    assert refused.json["code"] == "MACHINE_LIMIT_EXCEEDED"
    assert refused.json["details"] == {"max": 2, "current": 2}
    history = event_types(ledger, lic.tenant_id, lic.license_id)
    assert history[-1] == "license.limit_reached"
    assert history.count("license.machine_activated") == 2


def test_a_license_override_wins_over_the_policy_seats(
    client: CheckedClient, new_license: Callable[..., IssuedLicense]
) -> None:
    lic = new_license(settings={"max_machines": 1}, max_machines_override=2)

    results = [activate(client, lic).status_code for _ in range(3)]

    assert results == [201, 201, 422]


def test_a_freed_seat_goes_only_to_a_known_fingerprint_without_transfer(
    client: CheckedClient, new_license: Callable[..., IssuedLicense]
) -> None:
    lic = new_license(settings={"max_machines": 1, "allow_machine_transfer": False})
    first_fp = fingerprint()
    machine = activate(client, lic, first_fp).json["data"]
    assert client.delete(f"{MACHINES}/{machine['id']}", auth=lic.auth).status_code == 204

    stranger = activate(client, lic)
    returning = activate(client, lic, first_fp)

    assert stranger.status_code == 422
    assert stranger.json["details"]["reason"] == "MACHINE_TRANSFER_NOT_ALLOWED"
    assert returning.status_code == 201


def test_a_freed_seat_goes_to_any_fingerprint_with_transfer(
    client: CheckedClient, new_license: Callable[..., IssuedLicense]
) -> None:
    lic = new_license(settings={"max_machines": 1, "allow_machine_transfer": True})
    machine = activate(client, lic).json["data"]
    assert activate(client, lic).status_code == 422
    assert client.delete(f"{MACHINES}/{machine['id']}", auth=lic.auth).status_code == 204

    assert activate(client, lic).status_code == 201


def test_a_floating_seat_is_freed_by_a_dead_machine(
    client: CheckedClient,
    new_license: Callable[..., IssuedLicense],
    ledger: LedgerApplication,
    clock: FakeClock,
) -> None:
    settings: PolicySettings = {
        "max_machines": 1,
        "floating": True,
        "allow_machine_transfer": True,
        "require_heartbeat": True,
        "heartbeat_interval_minutes": 5,
        "heartbeat_cull_strategy": "KEEP_DEAD",
    }
    lic = new_license(settings=settings)
    dying = activate(client, lic).json["data"]
    refused = activate(client, lic)
    assert refused.status_code == 422
    assert refused.json["code"] == "FLOATING_LIMIT_EXCEEDED"
    assert refused.json["details"] == {"max": 1, "current": 1}

    clock.advance(timedelta(minutes=6))
    HeartbeatDeadlines(ledger, clock=clock).run_once()

    assert (
        client.get(f"{MACHINES}/{dying['id']}", auth=lic.auth).json["data"]["heartbeatStatus"]
        == "DEAD"
    )
    assert activate(client, lic).status_code == 201


# --- fingerprint uniqueness -----------------------------------------------------------


def test_per_policy_uniqueness_spans_the_licenses_of_the_policy(
    client: CheckedClient,
    new_license: Callable[..., IssuedLicense],
    ledger: LedgerApplication,
    acme: Account,
) -> None:
    policy = create_policy(ledger, acme.live.tenant_id, {"fingerprint_uniqueness": "PER_POLICY"})
    holder, other = new_license(policy=policy), new_license(policy=policy)
    elsewhere = new_license(settings={"fingerprint_uniqueness": "PER_POLICY"})
    fp = fingerprint()
    machine = activate(client, holder, fp).json["data"]

    taken = activate(client, other, fp)
    other_policy = activate(client, elsewhere, fp)
    client.delete(f"{MACHINES}/{machine['id']}", auth=holder.auth)
    freed = activate(client, other, fp)

    assert taken.status_code == 422
    assert taken.json["code"] == "FINGERPRINT_TAKEN"
    assert other_policy.status_code == 201
    assert freed.status_code == 201


def test_per_account_uniqueness_spans_the_environment_only(
    client: CheckedClient, new_license: Callable[..., IssuedLicense], acme: Account
) -> None:
    unique: PolicySettings = {"fingerprint_uniqueness": "PER_ACCOUNT"}
    holder = new_license()  # PER_LICENSE itself
    fp = fingerprint()
    assert activate(client, holder, fp).status_code == 201

    taken = activate(client, new_license(settings=unique), fp)
    other_environment = activate(client, new_license(acme.test, settings=unique), fp)
    per_license = activate(client, new_license(), fp)

    assert taken.status_code == 422
    assert taken.json["code"] == "FINGERPRINT_TAKEN"
    assert other_environment.status_code == 201
    assert per_license.status_code == 201


# --- license state --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "code"),
    [
        (licenses.suspend_license, "LICENSE_SUSPENDED"),
        (licenses.revoke_license, "LICENSE_REVOKED"),
        (licenses.ban_license, "LICENSE_BANNED"),
    ],
)
def test_an_unusable_license_refuses_activation(
    client: CheckedClient,
    new_license: Callable[..., IssuedLicense],
    ledger: LedgerApplication,
    clock: FakeClock,
    action: Callable[..., Any],
    code: str,
) -> None:
    lic = new_license()
    action(ledger, context(lic.tenant_id, clock()), lic.license_id)

    refused = activate(client, lic)

    assert refused.status_code == 409
    assert refused.json["code"] == code


@pytest.mark.parametrize(
    ("strategy", "status", "code"),
    [
        ("RESTRICT_ACCESS", 409, "LICENSE_EXPIRED"),
        ("REVOKE", 409, "LICENSE_EXPIRED"),
        ("ALLOW_ACCESS", 201, None),
    ],
)
def test_an_expired_license_activates_only_under_allow_access(
    client: CheckedClient,
    new_license: Callable[..., IssuedLicense],
    clock: FakeClock,
    strategy: str,
    status: int,
    code: str | None,
) -> None:
    lic = new_license(
        settings={"expiration_strategy": strategy}, expires_at=clock() - timedelta(days=1)
    )

    result = activate(client, lic)

    assert result.status_code == status, result.text
    assert result.json.get("code") == code


# --- heartbeats -----------------------------------------------------------------------


def test_heartbeats_record_events_only_when_the_state_changes(
    client: CheckedClient,
    new_license: Callable[..., IssuedLicense],
    ledger: LedgerApplication,
    clock: FakeClock,
) -> None:
    settings: PolicySettings = {
        "require_heartbeat": True,
        "heartbeat_interval_minutes": 10,
        "heartbeat_cull_strategy": "KEEP_DEAD",
    }
    lic = new_license(settings=settings)
    machine_id = activate(client, lic).json["data"]["id"]
    beat = f"{MACHINES}/{machine_id}/heartbeat"

    started = client.post(beat, auth=lic.auth)
    clock.advance(timedelta(minutes=5))
    alive = client.post(beat, auth=lic.auth)
    events_while_alive = event_types(ledger, lic.tenant_id, lic.license_id)
    clock.advance(timedelta(minutes=11))
    assert (
        client.get(f"{MACHINES}/{machine_id}", auth=lic.auth).json["data"]["heartbeatStatus"]
        == "DEAD"
    )  # past its deadline: dead on the wire before the timer records it
    HeartbeatDeadlines(ledger, clock=clock).run_once()
    revived = client.post(beat, auth=lic.auth)

    assert started.status_code == 200, started.text
    assert started.json["data"]["heartbeatStatus"] == "ALIVE"
    assert alive.json["data"]["lastHeartbeatAt"] > started.json["data"]["lastHeartbeatAt"]
    assert events_while_alive[-2:] == [
        "license.machine_activated",
        "license.machine_heartbeat_started",
    ]
    assert revived.json["data"]["heartbeatStatus"] == "ALIVE"
    assert event_types(ledger, lic.tenant_id, lic.license_id)[-2:] == [
        "license.machine_died",
        "license.machine_revived",
    ]


def test_a_late_ping_finds_the_machine_dead_before_the_timer_does(
    client: CheckedClient,
    new_license: Callable[..., IssuedLicense],
    ledger: LedgerApplication,
    clock: FakeClock,
) -> None:
    lic = new_license(settings={"require_heartbeat": True, "heartbeat_interval_minutes": 10})
    machine_id = activate(client, lic).json["data"]["id"]
    clock.advance(timedelta(minutes=11))

    late = client.post(f"{MACHINES}/{machine_id}/heartbeat", auth=lic.auth)

    # DEACTIVATE_DEAD: the missed deadline freed the seat; the client must activate again.
    assert late.status_code == 404
    assert event_types(ledger, lic.tenant_id, lic.license_id)[-3:] == [
        "license.machine_activated",
        "license.machine_died",
        "license.machine_deactivated",
    ]


# --- reads, updates, deactivation, access ---------------------------------------------


def test_machines_are_listed_per_license_page_by_page(
    client: CheckedClient,
    new_license: Callable[..., IssuedLicense],
    acme: Account,
    clock: FakeClock,
) -> None:
    lic = new_license()
    ids = []
    for _ in range(3):
        clock.advance(timedelta(seconds=1))
        ids.append(activate(client, lic).json["data"]["id"])
    query = {"licenseId": str(lic.license_id), "limit": 2}

    first = client.get(MACHINES, key=acme.live.api_key, params=query)
    cursor = first.json["pagination"]["nextCursor"]
    second = client.get(MACHINES, key=acme.live.api_key, params={**query, "cursor": cursor})

    assert [m["id"] for m in first.json["data"]] == ids[:2]
    assert first.json["pagination"]["hasMore"] is True
    assert [m["id"] for m in second.json["data"]] == ids[2:]
    assert second.json["pagination"] == {"nextCursor": None, "hasMore": False}
    assert client.get(MACHINES, auth=lic.auth).status_code == 403


def test_an_api_key_updates_name_and_metadata(
    client: CheckedClient, new_license: Callable[..., IssuedLicense], acme: Account
) -> None:
    lic = new_license()
    machine_id = activate(client, lic, name="old").json["data"]["id"]
    url = f"{MACHINES}/{machine_id}"

    patched = client.patch(url, key=acme.live.api_key, json={"name": "new", "metadata": {"k": 2}})
    by_license = client.patch(url, auth=lic.auth, json={"name": "mine"})

    assert patched.status_code == 200, patched.text
    assert (patched.json["data"]["name"], patched.json["data"]["metadata"]) == ("new", {"k": 2})
    assert by_license.status_code == 403
    assert client.get(url, key=acme.live.api_key).json["data"]["name"] == "new"


def test_deactivation_frees_the_seat_and_hides_the_machine(
    client: CheckedClient, new_license: Callable[..., IssuedLicense], acme: Account
) -> None:
    lic = new_license(settings={"max_machines": 1, "allow_machine_transfer": True})
    machine_id = activate(client, lic).json["data"]["id"]

    deleted = client.delete(f"{MACHINES}/{machine_id}", auth=lic.auth)

    assert deleted.status_code == 204
    assert client.get(f"{MACHINES}/{machine_id}", key=acme.live.api_key).status_code == 404
    assert client.delete(f"{MACHINES}/{machine_id}", auth=lic.auth).status_code == 404
    assert activate(client, lic).status_code == 201


def test_a_license_key_cannot_touch_another_licenses_machine(
    client: CheckedClient, new_license: Callable[..., IssuedLicense]
) -> None:
    owner, intruder = new_license(), new_license()
    machine_id = activate(client, owner).json["data"]["id"]
    url = f"{MACHINES}/{machine_id}"

    results = [
        client.get(url, auth=intruder.auth),
        client.delete(url, auth=intruder.auth),
        client.post(f"{url}/heartbeat", auth=intruder.auth),
        client.post(
            MACHINES,
            auth=intruder.auth,
            json={"fingerprint": fingerprint(), "licenseId": str(owner.license_id)},
        ),
    ]

    assert [(r.status_code, r.json["code"]) for r in results] == [(403, "FORBIDDEN")] * 4
    assert client.get(url, auth=owner.auth).status_code == 200


def test_another_tenants_machines_are_not_found(
    client: CheckedClient,
    new_license: Callable[..., IssuedLicense],
    acme: Account,
    globex: Account,
) -> None:
    machine_id = activate(client, new_license()).json["data"]["id"]
    foreign = new_license(globex.live)
    url = f"{MACHINES}/{machine_id}"

    for auth in (foreign.auth, f"Bearer {globex.live.api_key}", f"Bearer {acme.test.api_key}"):
        assert client.get(url, auth=auth).status_code == 404
        assert client.post(f"{url}/heartbeat", auth=auth).status_code == 404
        assert client.delete(url, auth=auth).status_code == 404
    listed = client.get(MACHINES, key=globex.live.api_key)
    assert machine_id not in [m["id"] for m in listed.json["data"]]
    assert client.get(url, key=acme.live.api_key).status_code == 200


def test_deactivated_machines_lose_their_heartbeat_row(
    client: CheckedClient, new_license: Callable[..., IssuedLicense], ledger: LedgerApplication
) -> None:
    lic = new_license(settings={"require_heartbeat": True})
    machine_id = UUID(activate(client, lic).json["data"]["id"])
    with ledger.reading(lic.tenant_id) as curs:
        before = curs.execute(
            "SELECT deadline_at FROM machine_heartbeats WHERE machine_id = %s", (machine_id,)
        ).fetchone()

    client.delete(f"{MACHINES}/{machine_id}", auth=lic.auth)

    with ledger.reading(lic.tenant_id) as curs:
        after = curs.execute(
            "SELECT 1 FROM machine_heartbeats WHERE machine_id = %s", (machine_id,)
        ).fetchone()
    assert before is not None
    assert before["deadline_at"] is not None
    assert after is None
