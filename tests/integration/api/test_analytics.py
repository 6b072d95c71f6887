"""`GET /analytics` (API.md §4): counts from read models and the analytics projection,
checked against the ledger itself after a mixed workload."""

from __future__ import annotations

import secrets
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any
from uuid import UUID

import psycopg

from api.config import Config
from api.validation_events import flush_all
from ledger.application import LedgerApplication
from ledger.store.tenancy import set_transaction_tenant
from tests.integration.api.catalogue import scoped_key
from tests.integration.api.conftest import Account
from tests.integration.api.conftest import CheckedClient
from tests.integration.api.conftest import Tenant
from tests.integration.api.licensing import PAST
from tests.integration.api.licensing import action
from tests.integration.api.licensing import issue
from tests.integration.api.licensing import new_policy
from tests.integration.api.licensing import new_product
from workers.analytics import AnalyticsProjection

ANALYTICS = "/api/v1/analytics"
MACHINES = "/api/v1/machines"
VALIDATE_KEY = "/api/v1/licenses/validate-key"


def _fingerprint() -> str:
    return "fp-" + secrets.token_hex(8)


def _workload(client: CheckedClient, tenant: Tenant) -> None:
    """Licenses in every status, machines alive/dead/not started/deactivated, validations."""
    key = tenant.api_key
    product = new_product(client, key)
    policy = new_policy(
        client, key, product["id"], requireHeartbeat=True, heartbeatIntervalMinutes=10
    )
    actives = [issue(client, key, policy) for _ in range(3)]
    issue(client, key, policy, expiresAt=PAST)
    for name in ("suspend", "revoke", "ban"):
        target = issue(client, key, policy)
        assert action(client, key, target["id"], name).status_code == 200
        # A refused validation of an existing license is recorded as failed.
        refused = client.post(VALIDATE_KEY, json={"key": target["key"]})
        assert refused.json["data"]["valid"] is False

    machines = []
    for lic in actives:
        made = client.post(
            MACHINES, key=key, json={"fingerprint": _fingerprint(), "licenseId": lic["id"]}
        )
        assert made.status_code == 201, made.text
        machines.append(made.json["data"])
    beat = client.post(f"{MACHINES}/{machines[0]['id']}/heartbeat", key=key)
    assert beat.status_code == 200, beat.text
    assert client.delete(f"{MACHINES}/{machines[2]['id']}", key=key).status_code == 204

    for lic in actives:
        body = {"key": lic["key"], "fingerprint": machines[0]["fingerprint"]}
        client.post(VALIDATE_KEY, json=body)  # valid for the first, not for the others
    assert client.post(VALIDATE_KEY, json={"key": "NOPE-AAAA-BBBB"}).status_code == 200
    flush_all()  # validation events are appended in batches, off the request path


def _from_ledger(config: Config, tenant_id: UUID, today: datetime) -> dict[str, Any]:
    """The same figures, counted straight from the events, as the database owner."""
    assert config.database_url is not None
    with psycopg.connect(config.database_url) as owner, owner.transaction():
        curs = owner.cursor()
        set_transaction_tenant(curs, tenant_id)
        rows = curs.execute(
            "SELECT event_type, (occurred_at AT TIME ZONE 'UTC')::date, count(*) FROM events"
            " WHERE tenant_id = %s GROUP BY 1, 2",
            (tenant_id,),
        ).fetchall()
    by_type: dict[str, int] = {}
    activations: dict[str, int] = {}
    for event_type, day, n in rows:
        by_type[event_type] = by_type.get(event_type, 0) + n
        if event_type == "license.machine_activated":
            activations[day.isoformat()] = activations.get(day.isoformat(), 0) + n
    days = [(today.date() - timedelta(days=6 - i)).isoformat() for i in range(7)]
    ok, failed = by_type.get("validation.success", 0), by_type.get("validation.failed", 0)
    return {
        "trend": [{"date": d, "count": activations.get(d, 0)} for d in days],
        "validations": {"total": ok + failed, "successful": ok, "failed": failed},
    }


def test_analytics_match_the_ledger_after_a_mixed_workload(
    client: CheckedClient, new_account: Any, ledger: LedgerApplication, config: Config
) -> None:
    account: Account = new_account()
    tenant = account.live
    _workload(client, tenant)
    AnalyticsProjection(ledger, events_per_batch=7).catch_up()

    data = client.get(ANALYTICS, key=tenant.api_key).json["data"]

    expected = _from_ledger(config, UUID(tenant.tenant_id), datetime.now(UTC))
    assert data["activations"]["trend"] == expected["trend"]
    assert data["activations"]["trend"][-1]["count"] == 3
    assert data["validations"] == expected["validations"]
    assert data["validations"] == {"total": 6, "successful": 1, "failed": 5}
    assert data["licenses"] == {
        "total": 7,
        "active": 3,
        "expired": 1,
        "suspended": 1,
        "revoked": 1,
        "banned": 1,
    }
    # Two active machines: one alive (it pinged), one whose heartbeat never started.
    assert data["machines"] == {"total": 2, "alive": 1, "dead": 0}


def test_counting_again_changes_nothing(
    client: CheckedClient, new_account: Any, ledger: LedgerApplication
) -> None:
    tenant = new_account().live
    _workload(client, tenant)
    projection = AnalyticsProjection(ledger)
    projection.catch_up()
    before = client.get(ANALYTICS, key=tenant.api_key).json["data"]
    projection.catch_up()
    assert projection.run_once() == 0
    assert client.get(ANALYTICS, key=tenant.api_key).json["data"] == before


def test_each_tenant_sees_only_its_own_counts(
    client: CheckedClient, new_account: Any, ledger: LedgerApplication
) -> None:
    busy: Account = new_account()
    quiet: Account = new_account()
    _workload(client, busy.live)
    AnalyticsProjection(ledger).catch_up()
    for tenant in (quiet.live, quiet.test, busy.test):
        data = client.get(ANALYTICS, key=tenant.api_key).json["data"]
        assert data["licenses"]["total"] == 0
        assert data["machines"]["total"] == 0
        assert data["validations"]["total"] == 0
        assert {day["count"] for day in data["activations"]["trend"]} == {0}


def test_analytics_read_scope_is_required(
    client: CheckedClient, acme: Account, ledger: LedgerApplication, config: Config
) -> None:
    assert client.get(ANALYTICS).status_code == 401
    reader = scoped_key(ledger, config, acme.live, ["analytics:read"])
    other = scoped_key(ledger, config, acme.live, ["licenses:read"])
    assert client.get(ANALYTICS, key=reader).status_code == 200
    assert client.get(ANALYTICS, key=other).status_code == 403
