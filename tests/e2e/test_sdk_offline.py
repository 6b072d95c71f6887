"""Offline licensing end to end: a real server process, a real worker process and the
official SDK (`Licentric.checkout`, `Licentric.verify_offline`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
import requests
from licentric import Licentric
from licentric.exceptions import BusinessRuleError
from licentric.exceptions import LicenseSuspendedError
from licentric.exceptions import ValidationError

from api.config import Config
from ledger.accounts import OpenedEnvironment
from ledger.accounts import open_account
from ledger.application import LedgerApplication
from ledger.commands import licenses
from tests.support.offline import OfflineLicense
from tests.support.offline import context
from tests.support.offline import offline_license
from tests.support.processes import ServerProcess

PUBLISH_WITHIN = 5.0  # seconds: the bound for a re-signed file after a renewal


@pytest.fixture
def sdk(server: ServerProcess, live: OpenedEnvironment) -> Iterator[Licentric]:
    client = Licentric(
        live.api_key,
        base_url=server.base_url,
        signing_key=live.signing_key,
        cache_ttl=0,
        max_retries=0,
    )
    yield client
    client.close()


@pytest.fixture
def make(
    ledger: LedgerApplication, config: Config, live: OpenedEnvironment
) -> Callable[..., OfflineLicense]:
    def made(**kwargs: object) -> OfflineLicense:
        return offline_license(
            ledger, live.tenant_id, pepper=config.pepper, master_key=config.master_key,
            **kwargs,  # type: ignore[arg-type]
        )  # fmt: skip

    return made


def test_sdk_checkout_gives_a_file_its_verify_offline_accepts(
    sdk: Licentric, live: OpenedEnvironment, make: Callable[..., OfflineLicense]
) -> None:
    lic = make()
    before = datetime.now(UTC)
    checked_out = sdk.checkout(str(lic.license_id), lic.fingerprint, ttl=3 * 86400)
    assert checked_out.certificate is not None
    assert checked_out.fingerprint == lic.fingerprint
    assert checked_out.ttl == 3 * 86400
    assert checked_out.license is not None
    assert checked_out.license.id == str(lic.license_id)

    result = Licentric.verify_offline(checked_out.certificate.encode(), live.public_key)
    assert result.valid
    assert result.signature_valid
    assert not result.expired
    assert result.header is not None
    assert result.header["version"] == 1
    assert result.header["licenseId"] == str(lic.license_id)
    assert result.header["fingerprint"] == lic.fingerprint
    expires = datetime.fromisoformat(result.header["expiresAt"])
    assert before + timedelta(days=3) - timedelta(seconds=1) <= expires
    assert expires <= datetime.now(UTC) + timedelta(days=3)


def test_another_environments_key_rejects_the_file(
    sdk: Licentric,
    ledger: LedgerApplication,
    config: Config,
    make: Callable[..., OfflineLicense],
) -> None:
    lic = make()
    certificate = sdk.checkout(str(lic.license_id), lic.fingerprint).certificate
    assert certificate is not None
    other = open_account(
        ledger, name="other", master_key=config.master_key, pepper=config.pepper,
        at=datetime.now(UTC),
    )  # fmt: skip
    for environment in other.environments.values():
        result = Licentric.verify_offline(certificate.encode(), environment.public_key)
        assert not result.valid
        assert not result.signature_valid


def test_sdk_sees_the_refusals(
    sdk: Licentric,
    ledger: LedgerApplication,
    live: OpenedEnvironment,
    make: Callable[..., OfflineLicense],
) -> None:
    lic = make(settings={"offline_max_days": 7})
    with pytest.raises(ValidationError) as too_long:
        sdk.checkout(str(lic.license_id), lic.fingerprint, ttl=8 * 86400)
    assert too_long.value.code == "CHECKOUT_TTL_INVALID"
    with pytest.raises(BusinessRuleError) as unknown:
        sdk.checkout(str(lic.license_id), "fp-not-a-machine", ttl=86400)
    assert unknown.value.details == {"reason": "FINGERPRINT_NOT_FOUND"}

    online_only = make(settings={"offline_allowed": False})
    with pytest.raises(BusinessRuleError) as refused:
        sdk.checkout(str(online_only.license_id), online_only.fingerprint)
    assert refused.value.code == "OFFLINE_NOT_ALLOWED"

    licenses.suspend_license(ledger, context(live.tenant_id), lic.license_id)
    with pytest.raises(LicenseSuspendedError):
        sdk.checkout(str(lic.license_id), lic.fingerprint, ttl=86400)


@pytest.mark.usefixtures("worker")
def test_the_worker_publishes_a_re_signed_file_after_renew(
    sdk: Licentric,
    server: ServerProcess,
    live: OpenedEnvironment,
    make: Callable[..., OfflineLicense],
) -> None:
    lic = make(expires_at=datetime.now(UTC) + timedelta(days=2))
    first = sdk.checkout(str(lic.license_id), lic.fingerprint, ttl=10 * 86400).certificate
    assert first is not None
    headers = {"Authorization": f"Bearer {live.api_key}"}
    renewed = requests.post(
        server.url(f"/api/v1/licenses/{lic.license_id}/renew"),
        json={"expiresAt": (datetime.now(UTC) + timedelta(days=60)).isoformat()},
        headers=headers,
        timeout=10,
    )
    assert renewed.status_code == 200, renewed.text

    deadline = time.monotonic() + PUBLISH_WITHIN
    while True:
        listed = requests.get(
            server.url(f"/api/v1/licenses/{lic.license_id}/checkouts"), headers=headers, timeout=10
        ).json()["data"]
        if listed and listed[0]["certificate"] != first:
            break
        if time.monotonic() > deadline:
            pytest.fail(f"no re-signed file within {PUBLISH_WITHIN} s")
        time.sleep(0.1)

    old = Licentric.verify_offline(first.encode(), live.public_key)
    new = Licentric.verify_offline(listed[0]["certificate"].encode(), live.public_key)
    assert old.valid
    assert new.valid
    assert old.header is not None
    assert new.header is not None
    # Capped by the license's old expiry before; the checkout's own end (10 days) now.
    assert datetime.fromisoformat(old.header["expiresAt"]) < datetime.now(UTC) + timedelta(days=2)
    assert datetime.fromisoformat(new.header["expiresAt"]) > datetime.now(UTC) + timedelta(days=9)
