"""`POST /licenses/{id}/<action>`: the transitions of API.md §4, renewals and usage."""

from __future__ import annotations

import threading
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from api.app import create_app
from api.config import Config
from api.services import Services
from ledger.application import LedgerApplication
from projections.inline import InlineProjections
from tests.integration.api.catalogue import new_entitlement
from tests.integration.api.conftest import Account
from tests.integration.api.conftest import CheckedClient
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


@pytest.fixture(scope="module")
def policy(client: CheckedClient, acme: Account) -> dict[str, Any]:
    """Licenses last 10 days and may count 5 uses."""
    product = new_product(client, acme.live.api_key)
    return new_policy(client, acme.live.api_key, product["id"], durationDays=10, maxUses=5)


@pytest.fixture
def make(client: CheckedClient, acme: Account, policy: dict[str, Any]) -> Callable[..., str]:
    """A new license in a given wire status; returns its id."""
    key = acme.live.api_key

    def make_license(status: str = "active") -> str:
        expires = PAST if status == "expired" else in_days(3)
        license_id: str = issue(client, key, policy, expiresAt=expires)["id"]
        verb = {"suspended": "suspend", "revoked": "revoke", "banned": "ban"}.get(status)
        if verb is not None:
            assert action(client, key, license_id, verb).status_code == 200
        assert read(client, key, license_id)["status"] == status
        return license_id

    return make_license


# (from, action, to) for every transition API.md §4 allows.
ALLOWED = [
    ("active", "suspend", "suspended"),
    ("suspended", "reinstate", "active"),
    ("active", "revoke", "revoked"),
    ("suspended", "revoke", "revoked"),
    ("expired", "revoke", "revoked"),
    ("active", "ban", "banned"),
    ("suspended", "ban", "banned"),
    ("expired", "ban", "banned"),
    ("expired", "renew", "active"),
]
# Refused with 409 CONFLICT: out-of-order moves, and everything on a final status.
REFUSED = [
    ("active", "reinstate"),
    ("suspended", "suspend"),
    ("expired", "suspend"),
    ("expired", "reinstate"),
    *[
        (final, verb)
        for final in ("revoked", "banned")
        for verb in ("suspend", "reinstate", "revoke", "ban", "renew", "reset-usage")
    ],
]


@pytest.mark.parametrize(("start", "verb", "end"), ALLOWED)
def test_allowed_transitions(
    client: CheckedClient, acme: Account, make: Callable[..., str], start: str, verb: str, end: str
) -> None:
    license_id = make(start)
    result = action(client, acme.live.api_key, license_id, verb)
    assert result.status_code == 200, result.text
    document = result.json["data"]
    assert document["status"] == end
    stamp = {"suspended": "suspendedAt", "revoked": "revokedAt", "banned": "bannedAt"}.get(end)
    if stamp is not None:
        assert document[stamp] is not None
    if verb == "reinstate":
        assert document["suspendedAt"] is None
    assert read(client, acme.live.api_key, license_id) == document


@pytest.mark.parametrize(("start", "verb"), REFUSED)
def test_refused_transitions_are_409_and_change_nothing(
    client: CheckedClient, acme: Account, make: Callable[..., str], start: str, verb: str
) -> None:
    key = acme.live.api_key
    license_id = make(start)
    before = read(client, key, license_id)
    refused(action(client, key, license_id, verb), 409, "CONFLICT")
    assert read(client, key, license_id) == before


@pytest.mark.parametrize("final", ["revoked", "banned"])
def test_a_final_license_refuses_every_change(
    client: CheckedClient, acme: Account, make: Callable[..., str], final: str
) -> None:
    key = acme.live.api_key
    code = new_entitlement(client, key)["code"]
    license_id = make(final)
    before = read(client, key, license_id)
    path = f"{LICENSES}/{license_id}"
    attempts = [
        client.patch(path, key=key, json={"expiresAt": in_days(30)}),
        action(client, key, license_id, "usage", json={"increment": 1}),
        action(client, key, license_id, "renew", json={"expiresAt": in_days(30)}),
        client.post(f"{path}/entitlements", key=key, json={"codes": [code]}),
    ]
    for result in attempts:
        refused(result, 409, "CONFLICT")
    assert read(client, key, license_id) == before


def test_patching_a_future_expiry_reactivates_an_expired_license(
    client: CheckedClient, acme: Account, make: Callable[..., str]
) -> None:
    license_id = make("expired")
    later = in_days(7)
    result = client.patch(
        f"{LICENSES}/{license_id}", key=acme.live.api_key, json={"expiresAt": later}
    )
    assert result.status_code == 200, result.text
    assert result.json["data"]["status"] == "active"
    assert result.json["data"]["expiresAt"] == later


def test_renewal_extends_by_the_policy_duration_from_the_later_of_now_and_expiry(
    client: CheckedClient, acme: Account, make: Callable[..., str]
) -> None:
    key = acme.live.api_key
    running = make("active")
    expires = parse(read(client, key, running)["expiresAt"])
    renewed = action(client, key, running, "renew").json["data"]
    assert parse(renewed["expiresAt"]) == expires + timedelta(days=10)

    lapsed = make("expired")
    started = datetime.now(UTC)
    renewed = action(client, key, lapsed, "renew").json["data"]
    assert renewed["status"] == "active"
    new_expiry = parse(renewed["expiresAt"])
    assert started + timedelta(days=10) - timedelta(seconds=1) <= new_expiry
    assert new_expiry <= datetime.now(UTC) + timedelta(days=10)

    until = in_days(400)
    explicit = action(client, key, lapsed, "renew", json={"expiresAt": until}).json["data"]
    assert explicit["expiresAt"] == until

    suspended = make("suspended")
    renewed = action(client, key, suspended, "renew").json["data"]
    assert renewed["status"] == "suspended"


def test_renewal_without_a_duration_or_a_date_is_422(client: CheckedClient, acme: Account) -> None:
    key = acme.live.api_key
    endless = new_policy(client, key, new_product(client, key)["id"])
    license_ = issue(client, key, endless, expiresAt=PAST)
    result = action(client, key, license_["id"], "renew")
    refused(result, 422, "BUSINESS_RULE_VIOLATION")
    assert read(client, key, license_["id"])["status"] == "expired"
    dated = action(client, key, license_["id"], "renew", json={"expiresAt": in_days(1)})
    assert dated.json["data"]["status"] == "active"


def test_usage_counts_up_to_the_cap_and_resets(
    client: CheckedClient, acme: Account, make: Callable[..., str]
) -> None:
    key = acme.live.api_key
    license_id = make("active")
    assert (
        action(client, key, license_id, "usage", json={"increment": 3}).json["data"]["usesCount"]
        == 3
    )
    over = action(client, key, license_id, "usage", json={"increment": 3})
    assert refused(over, 422, "USAGE_LIMIT_EXCEEDED")["details"] == {"max": 5, "current": 3}
    assert action(client, key, license_id, "usage", json={"increment": 2}).status_code == 200
    full = action(client, key, license_id, "usage", json={"increment": 1})
    assert refused(full, 422, "USAGE_LIMIT_EXCEEDED")["details"] == {"max": 5, "current": 5}
    reset = action(client, key, license_id, "reset-usage")
    assert reset.status_code == 200
    assert reset.json["data"]["usesCount"] == 0
    # The license's override wins over the policy (which is overridable by default).
    client.patch(f"{LICENSES}/{license_id}", key=key, json={"maxUsesOverride": 7})
    assert action(client, key, license_id, "usage", json={"increment": 7}).status_code == 200


# --- Random action sequences against a model of API.md §4's transitions ---------------


@dataclass
class Model:
    """Stored status plus whether the expiry has passed; the wire status derives."""

    stored: str = "active"
    lapsed: bool = False

    @property
    def status(self) -> str:
        return "expired" if self.stored == "active" and self.lapsed else self.stored

    def apply(self, verb: str) -> bool:
        """Whether the action is allowed; if so, its effect."""
        final = self.stored in {"revoked", "banned"}
        if verb == "suspend" and self.status == "active":
            self.stored = "suspended"
        elif verb == "reinstate" and self.status == "suspended":
            self.stored = "active"
        elif verb in {"revoke", "ban"} and not final:
            self.stored = {"revoke": "revoked", "ban": "banned"}[verb]
        elif verb in {"renew", "lapse"} and not final:
            self.lapsed = verb == "lapse"
        elif verb in {"usage", "reset-usage"} and not final:
            pass
        else:
            return False
        return True


VERBS = ["suspend", "reinstate", "revoke", "ban", "renew", "lapse", "usage", "reset-usage"]


def _perform(client: CheckedClient, key: str, license_id: str, verb: str) -> Any:
    if verb == "lapse":  # the expiry passes: PATCH it into the past
        return client.patch(f"{LICENSES}/{license_id}", key=key, json={"expiresAt": PAST})
    if verb == "renew":
        return action(client, key, license_id, verb, json={"expiresAt": in_days(30)})
    if verb == "usage":
        return action(client, key, license_id, verb, json={"increment": 1})
    return action(client, key, license_id, verb)


@settings(max_examples=25, deadline=None)
@given(verbs=st.lists(st.sampled_from(VERBS), min_size=1, max_size=8))
def test_any_action_sequence_follows_the_transition_model(
    client: CheckedClient, acme: Account, verbs: list[str]
) -> None:
    key = acme.live.api_key
    unlimited = _unlimited_policy(client, key)
    license_id = issue(client, key, unlimited, expiresAt=in_days(30))["id"]
    model = Model()
    for verb in verbs:
        result = _perform(client, key, license_id, verb)
        expected = 200 if model.apply(verb) else 409
        assert result.status_code == expected, (verbs, verb, result.text)
        if expected == 409:
            assert result.json["code"] == "CONFLICT"
        assert read(client, key, license_id)["status"] == model.status, (verbs, verb)


_POLICIES: dict[str, dict[str, Any]] = {}


def _unlimited_policy(client: CheckedClient, key: str) -> dict[str, Any]:
    # One per module run: hypothesis cannot take function-scoped fixtures.
    if key not in _POLICIES:
        _POLICIES[key] = new_policy(client, key, new_product(client, key)["id"])
    return _POLICIES[key]


# --- Exact usage under concurrency -----------------------------------------------------


@pytest.fixture(scope="module")
def wide_client(config: Config) -> Iterator[CheckedClient]:
    """An app whose pool has a connection for each of the racing threads."""
    ledger = LedgerApplication(
        config.database_url or "", pool_size=THREADS + 1, projector=InlineProjections()
    )
    yield CheckedClient(create_app(config, services=Services(ledger, config)))
    ledger.close()


THREADS = 16


def test_concurrent_usage_never_exceeds_the_cap(wide_client: CheckedClient, acme: Account) -> None:
    key = acme.live.api_key
    capped = new_policy(wide_client, key, new_product(wide_client, key)["id"], maxUses=10)
    license_id = issue(wide_client, key, capped)["id"]
    start = threading.Barrier(THREADS)
    statuses: list[int] = []
    lock = threading.Lock()

    def use() -> None:
        start.wait()
        result = action(wide_client, key, license_id, "usage", json={"increment": 1})
        with lock:
            statuses.append(result.status_code)

    threads = [threading.Thread(target=use) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] * 10 + [422] * (THREADS - 10)
    assert read(wide_client, key, license_id)["usesCount"] == 10
