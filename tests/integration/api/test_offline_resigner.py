"""The re-signer (workers/resigner.py) run in-process against the real database: after a
change, every unexpired checkout gets a re-signed file, recorded and listed."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any
from uuid import UUID
from uuid import uuid4

import pytest
from licentric import Licentric

from api.config import Config
from ledger.application import LedgerApplication
from ledger.commands import licenses
from ledger.commands.base import change
from ledger.commands.checkouts import checkout_license
from ledger.commands.signing_keys import rotate_signing_key
from ledger.commands.webhooks import DestinationPolicy
from ledger.commands.webhooks import create_webhook_endpoint
from ledger.domain.policy import Policy
from ledger.offline.certificate import verify_certificate
from projections.webhook_outbox import WebhookOutbox
from tests.integration.api.conftest import Account
from tests.integration.api.conftest import CheckedClient
from tests.integration.api.conftest import Tenant
from tests.support.offline import OfflineLicense
from tests.support.offline import context
from tests.support.offline import offline_license
from workers.resigner import Resigner

LICENSES = "/api/v1/licenses"
PUBLISH_WITHIN = 5.0  # seconds (the bound), polled, never asserted as a timing


@pytest.fixture
def tenant(new_account: Callable[[], Account]) -> Tenant:
    return new_account().live


@pytest.fixture(scope="module")
def resigner(ledger: LedgerApplication, config: Config) -> Resigner:
    return Resigner(ledger, master_key=config.master_key, clock=lambda: datetime.now(UTC))


def make(
    ledger: LedgerApplication, config: Config, tenant: Tenant, **kwargs: Any
) -> OfflineLicense:
    return offline_license(
        ledger, tenant.tenant_id, pepper=config.pepper, master_key=config.master_key, **kwargs
    )


def check_out(client: CheckedClient, tenant: Tenant, lic: OfflineLicense, **body: Any) -> Any:
    result = client.post(
        f"{LICENSES}/{lic.license_id}/checkout",
        key=tenant.api_key,
        json={"fingerprint": lic.fingerprint, **body},
    )
    assert result.status_code == 200, result.text
    return result.json["data"]


def checkouts(client: CheckedClient, tenant: Tenant, lic: OfflineLicense) -> list[dict[str, Any]]:
    result = client.get(f"{LICENSES}/{lic.license_id}/checkouts", key=tenant.api_key)
    assert result.status_code == 200
    data: list[dict[str, Any]] = result.json["data"]
    return data


def published(
    client: CheckedClient,
    tenant: Tenant,
    lic: OfflineLicense,
    resigner: Resigner,
    before: list[str],
) -> list[dict[str, Any]]:
    """Run the loop until every checkout shows a new file (or the bound passes)."""
    deadline = time.monotonic() + PUBLISH_WITHIN
    while True:
        resigner.run_once()
        current = checkouts(client, tenant, lic)
        if all(c["certificate"] not in before for c in current):
            return current
        if time.monotonic() > deadline:
            pytest.fail(f"no re-signed file within {PUBLISH_WITHIN} s")
        time.sleep(0.05)


def regenerated_events(ledger: LedgerApplication, tenant: Tenant, lic: OfflineLicense) -> list[Any]:
    with ledger.reading(UUID(tenant.tenant_id)) as curs:
        return curs.execute(
            "SELECT data, metadata FROM events WHERE stream_id = %s"
            " AND event_type = 'license.file_regenerated' ORDER BY position",
            (lic.license_id,),
        ).fetchall()


def test_after_renew_a_re_signed_file_carries_the_new_expiry(
    client: CheckedClient,
    ledger: LedgerApplication,
    config: Config,
    tenant: Tenant,
    resigner: Resigner,
) -> None:
    now = datetime.now(UTC)
    lic = make(ledger, config, tenant, expires_at=now + timedelta(days=2))
    first = check_out(client, tenant, lic, ttl=7 * 86400)
    assert datetime.fromisoformat(first["expiresAt"]) < now + timedelta(days=2, minutes=1)
    resigner.run_once()  # the checkout itself changes nothing
    assert regenerated_events(ledger, tenant, lic) == []

    renewed_until = now + timedelta(days=30)
    licenses.renew_license(ledger, context(tenant.tenant_id), lic.license_id, renewed_until)
    [item] = published(client, tenant, lic, resigner, [first["certificate"]])

    assert item["expiresAt"] == item["fileExpiresAt"]  # the checkout's end, no longer capped
    assert datetime.fromisoformat(item["fileExpiresAt"]) > now + timedelta(days=6)
    result = Licentric.verify_offline(item["certificate"].encode(), tenant.public_key)
    assert result.valid
    assert result.header is not None
    assert result.header["expiresAt"] == item["fileExpiresAt"]
    payload = verify_certificate(item["certificate"], [tenant.public_key], now=datetime.now(UTC))
    assert payload.payload is not None
    assert datetime.fromisoformat(payload.payload["license"]["expiresAt"]) > now + timedelta(
        days=29
    )
    [event] = regenerated_events(ledger, tenant, lic)
    assert event["data"]["certificate"] == item["certificate"]
    assert event["metadata"]["actor"] == {"type": "system", "id": "resigner"}

    resigner.run_once()  # converged: nothing is regenerated twice
    Resigner(ledger, master_key=config.master_key, clock=lambda: datetime.now(UTC)).run_once()
    assert len(regenerated_events(ledger, tenant, lic)) == 1


def test_a_suspension_publishes_a_file_born_expired_and_reinstating_revives_it(
    client: CheckedClient,
    ledger: LedgerApplication,
    config: Config,
    tenant: Tenant,
    resigner: Resigner,
) -> None:
    lic = make(ledger, config, tenant)
    first = check_out(client, tenant, lic)
    licenses.suspend_license(ledger, context(tenant.tenant_id), lic.license_id)
    [suspended] = published(client, tenant, lic, resigner, [first["certificate"]])
    result = Licentric.verify_offline(suspended["certificate"].encode(), tenant.public_key)
    assert result.signature_valid
    assert result.expired  # born expired: a client that refreshes its file stops
    assert suspended["fileExpiresAt"] == suspended["fileIssuedAt"]

    licenses.reinstate_license(ledger, context(tenant.tenant_id), lic.license_id)
    [revived] = published(client, tenant, lic, resigner, [suspended["certificate"]])
    assert Licentric.verify_offline(revived["certificate"].encode(), tenant.public_key).valid


def test_a_policy_change_re_signs_its_licenses_files(
    client: CheckedClient,
    ledger: LedgerApplication,
    config: Config,
    tenant: Tenant,
    resigner: Resigner,
) -> None:
    lic = make(ledger, config, tenant)
    first = check_out(client, tenant, lic, encrypt=True)
    change(
        ledger,
        context(tenant.tenant_id),
        Policy,
        lic.policy_id,
        lambda p: p.attach_entitlements(codes=["pro"], at=datetime.now(UTC)),
    )
    [item] = published(client, tenant, lic, resigner, [first["certificate"]])
    opened = verify_certificate(
        item["certificate"], [tenant.public_key], now=datetime.now(UTC), license_key=lic.key
    )
    assert opened.header["encrypted"] is True
    assert opened.payload is not None
    assert opened.payload["entitlements"] == ["pro"]


def test_a_key_rotation_re_signs_every_unexpired_checkout_with_the_new_key(
    client: CheckedClient,
    ledger: LedgerApplication,
    config: Config,
    tenant: Tenant,
    resigner: Resigner,
) -> None:
    one, two = make(ledger, config, tenant), make(ledger, config, tenant)
    old = [check_out(client, tenant, lic)["certificate"] for lic in (one, two)]
    rotated = client.post("/api/v1/signing-keys/rotate", key=tenant.api_key).json["data"]
    for lic, before in zip((one, two), old, strict=True):
        [item] = published(client, tenant, lic, resigner, [before])
        assert item["kid"] == rotated["kid"]
        assert Licentric.verify_offline(item["certificate"].encode(), rotated["publicKey"]).valid
        # Files issued before the rotation still verify with the retired key.
        assert Licentric.verify_offline(before.encode(), tenant.public_key).valid


def test_a_checkout_that_raced_a_rotation_is_re_signed_with_the_new_key(
    client: CheckedClient,
    ledger: LedgerApplication,
    config: Config,
    tenant: Tenant,
    resigner: Resigner,
) -> None:
    lic = make(ledger, config, tenant)
    ctx = context(tenant.tenant_id)
    rotated = rotate_signing_key(ledger, ctx, master_key=config.master_key)
    resigner.run_once()  # the rotation is handled before the late checkout commits
    late = checkout_license(
        ledger, ctx, lic.license_id, checkout_id=uuid4(), fingerprint=lic.fingerprint,
        ttl=86400, encrypt=False, master_key=config.master_key, pepper=config.pepper,
        signing_key=rotated.retired,  # read just before the rotation committed
    )  # fmt: skip
    [item] = published(client, tenant, lic, resigner, [late.certificate])
    assert item["kid"] == rotated.active.kid
    assert Licentric.verify_offline(item["certificate"].encode(), rotated.active.public_key).valid


def test_the_file_regenerated_webhook_carries_the_new_certificate(
    client: CheckedClient,
    ledger: LedgerApplication,
    config: Config,
    tenant: Tenant,
    resigner: Resigner,
) -> None:
    create_webhook_endpoint(
        ledger, context(tenant.tenant_id), endpoint_id=uuid4(), url="http://127.0.0.1:9/hook",
        events=["license.checked_out", "license.file_regenerated"],
        master_key=config.master_key, destinations=DestinationPolicy(allow_private=True),
    )  # fmt: skip
    lic = make(ledger, config, tenant)
    first = check_out(client, tenant, lic)
    licenses.suspend_license(ledger, context(tenant.tenant_id), lic.license_id)
    [item] = published(client, tenant, lic, resigner, [first["certificate"]])
    outbox = WebhookOutbox(ledger)
    while outbox.consume(UUID(tenant.tenant_id)):
        pass
    with ledger.reading(UUID(tenant.tenant_id)) as curs:
        rows = curs.execute(
            "SELECT event_type, body FROM webhook_deliveries ORDER BY seq"
        ).fetchall()
    bodies = {row["event_type"]: json.loads(bytes(row["body"])) for row in rows}
    assert bodies["license.checked_out"]["data"]["checkout"]["certificate"] == first["certificate"]
    regenerated = bodies["license.file_regenerated"]["data"]
    assert regenerated["checkout"]["certificate"] == item["certificate"]
    assert regenerated["checkout"]["fileExpiresAt"] == item["fileExpiresAt"]
    assert regenerated["status"] == "suspended"
