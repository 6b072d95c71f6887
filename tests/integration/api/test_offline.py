"""Offline license files over the API: checkout, download, refusals, listing, encryption,
signing keys and their rotation (API.md §3, §7)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from licentric import Licentric

from api.config import Config
from ledger.application import LedgerApplication
from ledger.commands import licenses
from ledger.offline.certificate import InvalidLicenseFileError
from ledger.offline.certificate import verify_certificate
from tests.integration.api.catalogue import scoped_key
from tests.integration.api.conftest import Account
from tests.integration.api.conftest import CheckedClient
from tests.integration.api.conftest import Tenant
from tests.support.offline import OfflineLicense
from tests.support.offline import context
from tests.support.offline import offline_license

LICENSES = "/api/v1/licenses"
SIGNING_KEYS = "/api/v1/signing-keys"

MakeLicense = Callable[..., OfflineLicense]


@pytest.fixture(scope="module")
def tenant(new_account: Callable[[], Account]) -> Tenant:
    return new_account().live


@pytest.fixture(scope="module")
def make_license(ledger: LedgerApplication, config: Config, tenant: Tenant) -> MakeLicense:
    def make(**kwargs: Any) -> OfflineLicense:
        kwargs.setdefault("master_key", config.master_key)
        return offline_license(ledger, tenant.tenant_id, pepper=config.pepper, **kwargs)

    return make


def checkout(
    client: CheckedClient, key: str, lic: OfflineLicense, path: str = "checkout", **body: Any
) -> Any:
    body.setdefault("fingerprint", lic.fingerprint)
    return client.post(f"{LICENSES}/{lic.license_id}/{path}", key=key, json=body)


def test_checkout_returns_a_file_the_sdk_accepts(
    client: CheckedClient, tenant: Tenant, make_license: MakeLicense
) -> None:
    lic = make_license()
    result = checkout(client, tenant.api_key, lic, ttl=86400)
    assert result.status_code == 200, result.text
    data = result.json["data"]
    assert data["fingerprint"] == lic.fingerprint
    assert data["ttl"] == 86400
    assert data["license"]["id"] == str(lic.license_id)
    # Built from the aggregates in hand: the very document GET /licenses/{id} serves.
    read = client.get(f"{LICENSES}/{lic.license_id}", key=tenant.api_key).json["data"]
    assert data["license"] == read
    verified = Licentric.verify_offline(data["certificate"].encode(), tenant.public_key)
    assert verified.valid
    assert verified.signature_valid
    assert verified.header is not None
    assert verified.header["version"] == 1
    assert verified.header["expiresAt"] == data["expiresAt"]
    expires = datetime.fromisoformat(data["expiresAt"])
    assert timedelta(hours=23) < expires - datetime.now(UTC) <= timedelta(days=1)
    ours = verify_certificate(
        data["certificate"], [tenant.public_key], now=datetime.now(UTC), fingerprint=lic.fingerprint
    )
    assert ours.valid
    assert ours.payload is not None
    assert ours.payload["license"]["id"] == str(lic.license_id)
    assert ours.payload["machine"]["id"] == str(lic.machine_id)


def test_the_default_ttl_is_fourteen_days_capped_by_the_policy(
    client: CheckedClient, tenant: Tenant, make_license: MakeLicense
) -> None:
    assert checkout(client, tenant.api_key, make_license()).json["data"]["ttl"] == 1_209_600
    capped = make_license(settings={"offline_max_days": 7})
    assert checkout(client, tenant.api_key, capped).json["data"]["ttl"] == 7 * 86400


def test_offline_file_is_the_file_itself(
    client: CheckedClient, tenant: Tenant, make_license: MakeLicense
) -> None:
    lic = make_license()
    result = checkout(client, tenant.api_key, lic, path="offline-file")
    assert result.status_code == 200, result.text
    assert result.headers["content-type"].startswith("application/x-licentric-license")
    assert result.headers["content-disposition"] == 'attachment; filename="license.lic"'
    assert result.text.startswith("-----BEGIN LICENSE FILE-----\n")
    assert Licentric.verify_offline(result.content, tenant.public_key).valid


@pytest.mark.parametrize(
    ("ttl", "max_days"),
    [(3599, 14), (7_776_001, 90), (14 * 86400 + 1, 14), (8 * 86400, 7), (0, 14), (-5, 14)],
)
def test_ttl_outside_the_rules_is_400_checkout_ttl_invalid(
    client: CheckedClient, tenant: Tenant, make_license: MakeLicense, ttl: int, max_days: int
) -> None:
    lic = make_license(settings={"offline_max_days": max_days})
    for path in ("checkout", "offline-file"):
        result = checkout(client, tenant.api_key, lic, path=path, ttl=ttl)
        assert result.status_code == 400, result.text
        assert result.json["code"] == "CHECKOUT_TTL_INVALID"


def test_a_ttl_that_is_not_an_integer_is_a_validation_error(
    client: CheckedClient, tenant: Tenant, make_license: MakeLicense
) -> None:
    result = checkout(client, tenant.api_key, make_license(), ttl="a day")
    assert result.status_code == 400
    assert result.json["code"] == "VALIDATION_ERROR"


def test_offline_not_allowed_is_422(
    client: CheckedClient, tenant: Tenant, make_license: MakeLicense
) -> None:
    result = checkout(client, tenant.api_key, make_license(settings={"offline_allowed": False}))
    assert result.status_code == 422
    assert result.json["code"] == "OFFLINE_NOT_ALLOWED"


@pytest.mark.parametrize(
    ("action", "code"),
    [
        (licenses.suspend_license, "LICENSE_SUSPENDED"),
        (licenses.revoke_license, "LICENSE_REVOKED"),
        (licenses.ban_license, "LICENSE_BANNED"),
    ],
)
def test_a_license_that_could_not_validate_is_409(
    client: CheckedClient,
    tenant: Tenant,
    make_license: MakeLicense,
    ledger: LedgerApplication,
    action: Callable[..., Any],
    code: str,
) -> None:
    lic = make_license()
    action(ledger, context(tenant.tenant_id), lic.license_id)
    result = checkout(client, tenant.api_key, lic)
    assert result.status_code == 409
    assert result.json["code"] == code


def test_an_expired_license_is_409_unless_its_policy_allows_access(
    client: CheckedClient, tenant: Tenant, make_license: MakeLicense, ledger: LedgerApplication
) -> None:
    past = datetime.now(UTC) - timedelta(minutes=1)
    restricted = make_license(expires_at=past)
    allowed = make_license(expires_at=past, settings={"expiration_strategy": "ALLOW_ACCESS"})
    result = checkout(client, tenant.api_key, restricted)
    assert result.status_code == 409
    assert result.json["code"] == "LICENSE_EXPIRED"
    assert checkout(client, tenant.api_key, allowed).status_code == 200


def test_a_fingerprint_that_is_not_an_active_machine_is_422(
    client: CheckedClient, tenant: Tenant, make_license: MakeLicense
) -> None:
    result = checkout(client, tenant.api_key, make_license(), fingerprint="fp-not-a-machine")
    assert result.status_code == 422
    assert result.json["code"] == "BUSINESS_RULE_VIOLATION"
    assert result.json["details"]["reason"] == "FINGERPRINT_NOT_FOUND"


def test_a_fingerprint_is_required_when_the_policy_requires_one(
    client: CheckedClient, tenant: Tenant, make_license: MakeLicense
) -> None:
    result = checkout(client, tenant.api_key, make_license(), fingerprint=None)
    assert result.status_code == 400
    assert result.json["details"]["issues"][0]["path"] == ["fingerprint"]
    free = make_license(settings={"require_fingerprint": False})
    result = client.post(f"{LICENSES}/{free.license_id}/checkout", key=tenant.api_key)
    assert result.status_code == 200, result.text
    assert result.json["data"]["fingerprint"] is None


def test_checkout_needs_licenses_write(
    client: CheckedClient,
    tenant: Tenant,
    make_license: MakeLicense,
    ledger: LedgerApplication,
    config: Config,
) -> None:
    lic = make_license()
    reader = scoped_key(ledger, config, tenant, ["licenses:read"])
    assert checkout(client, reader, lic).status_code == 403
    writer = scoped_key(ledger, config, tenant, ["licenses:write"])
    assert checkout(client, writer, lic).status_code == 200
    listed = client.get(f"{LICENSES}/{lic.license_id}/checkouts", key=reader)
    assert listed.status_code == 200


def test_checkouts_lists_unexpired_checkouts_with_their_files(
    client: CheckedClient, tenant: Tenant, make_license: MakeLicense
) -> None:
    lic = make_license()
    first = checkout(client, tenant.api_key, lic).json["data"]
    second = checkout(client, tenant.api_key, lic, ttl=7200).json["data"]
    listed = client.get(f"{LICENSES}/{lic.license_id}/checkouts", key=tenant.api_key).json
    assert [c["certificate"] for c in listed["data"]] == [
        first["certificate"],
        second["certificate"],
    ]
    item = listed["data"][1]
    assert item["ttl"] == 7200
    assert item["fileExpiresAt"] == second["expiresAt"]
    assert item["machineId"] == str(lic.machine_id)
    page = client.get(
        f"{LICENSES}/{lic.license_id}/checkouts", key=tenant.api_key, params={"limit": 1}
    ).json
    assert page["pagination"] == {"nextCursor": listed["data"][0]["id"], "hasMore": True}
    rest = client.get(
        f"{LICENSES}/{lic.license_id}/checkouts",
        key=tenant.api_key,
        params={"cursor": page["pagination"]["nextCursor"]},
    ).json
    assert [c["id"] for c in rest["data"]] == [item["id"]]


def test_each_checkout_is_a_checked_out_event(
    client: CheckedClient, tenant: Tenant, make_license: MakeLicense, ledger: LedgerApplication
) -> None:
    lic = make_license()
    certificate = checkout(client, tenant.api_key, lic).json["data"]["certificate"]
    with ledger.reading(UUID(tenant.tenant_id)) as curs:
        row = curs.execute(
            "SELECT data, metadata FROM events WHERE stream_id = %s"
            " AND event_type = 'license.checked_out'",
            (lic.license_id,),
        ).fetchone()
    assert row is not None
    assert row["data"]["certificate"] == certificate
    assert row["metadata"]["actor"]["type"] == "api_key"


def test_encrypted_files_open_with_the_license_key_only(
    client: CheckedClient, tenant: Tenant, make_license: MakeLicense
) -> None:
    lic = make_license()
    data = checkout(client, tenant.api_key, lic, encrypt=True).json["data"]
    certificate = data["certificate"]
    result = Licentric.verify_offline(certificate.encode(), tenant.public_key)
    assert result.valid
    assert result.header is not None
    assert result.header["encrypted"] is True
    now = datetime.now(UTC)
    sealed = verify_certificate(certificate, [tenant.public_key], now=now)
    assert sealed.payload is None
    opened = verify_certificate(certificate, [tenant.public_key], now=now, license_key=lic.key)
    assert opened.payload is not None
    assert opened.payload["license"]["id"] == str(lic.license_id)


def test_encryption_without_a_stored_key_needs_the_license_key(
    client: CheckedClient, tenant: Tenant, make_license: MakeLicense
) -> None:
    lic = make_license(master_key=None)
    refused = checkout(client, tenant.api_key, lic, encrypt=True)
    assert refused.status_code == 422
    assert refused.json["details"]["reason"] == "LICENSE_KEY_REQUIRED"
    wrong = checkout(client, tenant.api_key, lic, encrypt=True, licenseKey="LIC-NOPE-NOPE")
    assert wrong.status_code == 422
    assert wrong.json["details"]["reason"] == "LICENSE_KEY_MISMATCH"
    given = checkout(client, tenant.api_key, lic, encrypt=True, licenseKey=lic.key)
    assert given.status_code == 200, given.text
    # The derived key is kept (sealed): the next one, and re-signing, need no license key.
    assert checkout(client, tenant.api_key, lic, encrypt=True).status_code == 200


def test_signing_keys_lists_the_active_public_key(client: CheckedClient, tenant: Tenant) -> None:
    keys = client.get(SIGNING_KEYS, key=tenant.api_key).json["data"]
    assert [(k["publicKey"], k["status"]) for k in keys] == [(tenant.public_key, "active")]


def test_signing_keys_need_a_full_access_key(
    client: CheckedClient, tenant: Tenant, ledger: LedgerApplication, config: Config
) -> None:
    scoped = scoped_key(ledger, config, tenant, ["licenses:read", "licenses:write"])
    for method, path in (("GET", SIGNING_KEYS), ("POST", f"{SIGNING_KEYS}/rotate")):
        result = client.request(method, path, key=scoped)
        assert result.status_code == 403
        assert result.json["code"] == "FORBIDDEN"


def test_rotation_retires_the_old_key_and_old_files_keep_verifying(
    client: CheckedClient,
    new_account: Callable[[], Account],
    ledger: LedgerApplication,
    config: Config,
) -> None:
    tenant = new_account().test
    lic = offline_license(
        ledger, tenant.tenant_id, pepper=config.pepper, master_key=config.master_key
    )
    old = checkout(client, tenant.api_key, lic).json["data"]["certificate"]
    rotated = client.post(f"{SIGNING_KEYS}/rotate", key=tenant.api_key)
    assert rotated.status_code == 200, rotated.text
    data = rotated.json["data"]
    assert data["kind"] == "ed25519"
    assert data["retired"]["publicKey"] == tenant.public_key
    assert data["retired"]["status"] == "retired"
    new_public_key = data["publicKey"]
    keys = client.get(SIGNING_KEYS, key=tenant.api_key).json["data"]
    assert [(k["publicKey"], k["status"]) for k in keys] == [
        (tenant.public_key, "retired"),
        (new_public_key, "active"),
    ]
    new = checkout(client, tenant.api_key, lic).json["data"]["certificate"]
    assert Licentric.verify_offline(old.encode(), tenant.public_key).valid
    assert Licentric.verify_offline(new.encode(), new_public_key).valid
    assert not Licentric.verify_offline(new.encode(), tenant.public_key).valid
    now = datetime.now(UTC)
    assert verify_certificate(new, [tenant.public_key, new_public_key], now=now).valid
    with pytest.raises(InvalidLicenseFileError):
        verify_certificate(old, [new_public_key], now=now)


def test_rotating_the_response_secret_signs_validations_with_the_new_one(
    client: CheckedClient,
    new_account: Callable[[], Account],
    ledger: LedgerApplication,
    config: Config,
) -> None:
    tenant = new_account().live
    lic = offline_license(
        ledger, tenant.tenant_id, pepper=config.pepper, master_key=config.master_key
    )
    result = client.post(f"{SIGNING_KEYS}/rotate", key=tenant.api_key, json={"kind": "response"})
    assert result.status_code == 200, result.text
    secret = result.json["data"]["signingKey"]
    assert len(secret) == 64
    assert secret != tenant.signing_key
    keys = client.get(SIGNING_KEYS, key=tenant.api_key).json["data"]
    assert [k["status"] for k in keys] == ["active"]  # the Ed25519 key did not change
    validated = client.post(
        "/api/v1/licenses/validate-key", json={"key": lic.key, "fingerprint": lic.fingerprint}
    )
    assert validated.json["data"]["valid"] is True
    timestamp = validated.headers["X-Signature-Timestamp"]
    expected = hmac.new(
        secret.encode(), timestamp.encode() + b"." + validated.content, hashlib.sha256
    ).hexdigest()
    assert validated.headers["X-Signature"] == expected
