"""Consumer lag and webhook backlog: on /ready and as /metrics gauges, read across
tenants through the aggregate-only functions of migration 0011."""

from __future__ import annotations

import re
from typing import Any

from ledger.application import LedgerApplication
from projections.webhook_outbox import WebhookOutbox
from tests.integration.api.catalogue import created
from tests.integration.api.conftest import Account
from tests.integration.api.conftest import CheckedClient
from tests.integration.api.licensing import new_product
from workers.analytics import AnalyticsProjection

READY = "/api/v1/ready"


def _gauges(client: CheckedClient) -> dict[str, float]:
    text = client.get("/metrics").text
    return {
        m[1]: float(m[2])
        for m in re.finditer(
            r"^(licentric_(?:consumer|webhook)_[a-z_]+(?:\{[^}]*\})?) (\S+)$", text, re.MULTILINE
        )
    }


def _lag(client: CheckedClient) -> dict[str, Any]:
    result = client.get(READY)
    assert result.status_code == 200, result.text
    lag: dict[str, Any] = result.json["lag"]
    return lag


def test_ready_reports_each_consumers_lag_and_stays_ready(
    client: CheckedClient, acme: Account, globex: Account, ledger: LedgerApplication
) -> None:
    AnalyticsProjection(ledger).catch_up()
    assert _lag(client)["analytics"] == 0
    new_product(client, acme.live.api_key)
    new_product(client, globex.live.api_key)
    lag = _lag(client)
    assert set(lag) == {"analytics", "resigner", "webhooks"}
    assert lag["analytics"] == 2  # one event in each of two tenants
    assert lag["resigner"] >= 2  # nothing re-signs in this test
    AnalyticsProjection(ledger).catch_up()
    assert _lag(client)["analytics"] == 0


def test_metrics_expose_lag_and_webhook_backlog(
    client: CheckedClient, new_account: Any, ledger: LedgerApplication
) -> None:
    key = new_account().live.api_key
    body = {"url": "https://93.184.216.34/hooks/licentric", "events": ["product.created"]}
    created(client.post("/api/v1/webhooks", key=key, json=body))
    WebhookOutbox(ledger).run_once()  # the tenant's earlier events (nothing to send)
    before = _gauges(client)
    assert before['licentric_consumer_lag_events{consumer="webhooks"}'] == 0
    assert "licentric_webhook_failed_deliveries" in before

    new_product(client, key)
    new_product(client, key)
    lagging = _gauges(client)
    assert lagging['licentric_consumer_lag_events{consumer="webhooks"}'] == 2
    assert 'licentric_consumer_lag_events{consumer="analytics"}' in lagging
    assert 'licentric_consumer_lag_events{consumer="resigner"}' in lagging

    WebhookOutbox(ledger).run_once()
    after = _gauges(client)
    assert after['licentric_consumer_lag_events{consumer="webhooks"}'] == 0
    assert (
        after["licentric_webhook_backlog_deliveries"]
        == before["licentric_webhook_backlog_deliveries"] + 2
    )
