"""What a license file says, and when it stops being trusted (ledger.offline.content)."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any
from uuid import uuid4

from ledger.domain.license import License
from ledger.domain.license_checkouts import Checkout
from ledger.domain.policy import Policy
from ledger.domain.templates import PolicySettings
from ledger.domain.timestamps import iso_ms
from ledger.offline.content import FileContent
from ledger.offline.content import render_file as render
from ledger.offline.rules import OfflinePolicy

T0 = datetime(2026, 1, 15, 10, 30, 0, 123456, tzinfo=UTC)
FP = "fp-00000001"


def render_file(
    lic: License, pol: Policy, plan: Checkout, *, kid: str, at: datetime
) -> FileContent:
    return render(lic, OfflinePolicy.of(pol), plan, kid=kid, at=at)


def policy(**settings: Any) -> Policy:
    chosen: PolicySettings = {"max_machines": 3, **settings}  # type: ignore[typeddict-item]
    return Policy.create(id=uuid4(), product_id=uuid4(), name="Desktop", settings=chosen, at=T0)


def checked_out(pol: Policy, *, expires_in: timedelta | None = None) -> tuple[License, Checkout]:
    lic = License.create(
        id=uuid4(),
        product_id=uuid4(),
        policy_id=pol.id,
        key_hash="ab" * 32,
        name="Ada's license",
        user_email="ada@example.com",
        expires_at=None if expires_in is None else T0 + expires_in,
        entitlements=["extra"],
        at=T0,
    )
    lic.activate_machine(machine_id=uuid4(), fingerprint=FP, max_machines=3, at=T0)
    plan = lic.plan_checkout(
        checkout_id=uuid4(), fingerprint=FP, ttl=7 * 86400, kid="k1", offline_allowed=True,
        offline_max_days=14, require_fingerprint=True, expired_blocks=True, at=T0,
    )  # fmt: skip
    return lic, plan


def test_a_fresh_file_lasts_the_ttl() -> None:
    pol = policy()
    pol.attach_entitlements(codes=["pro"], at=T0)
    lic, plan = checked_out(pol)
    content = render_file(lic, pol, plan, kid="k1", at=T0)
    assert content.header == {
        "version": 1,
        "algorithm": "Ed25519",
        "kid": "k1",
        "issuedAt": "2026-01-15T10:30:00.123Z",
        "expiresAt": "2026-01-22T10:30:00.123Z",
        "licenseId": str(lic.id),
        "fingerprint": FP,
    }
    payload = content.payload
    assert set(payload) == {"license", "policy", "entitlements", "machine", "issuedAt", "expiresAt"}
    assert payload["entitlements"] == ["pro", "extra"]
    assert payload["policy"]["maxMachines"] == 3
    assert payload["policy"]["offlineMaxDays"] == 14
    assert payload["machine"]["fingerprint"] == FP
    assert payload["license"]["status"] == "active"
    assert "ada@example.com" not in str(payload)  # no PII in a file that travels


def test_a_license_expiring_sooner_caps_the_file() -> None:
    lic, plan = checked_out(policy(), expires_in=timedelta(days=2))
    content = render_file(lic, policy(), plan, kid="k1", at=T0)
    assert content.header["expiresAt"] == iso_ms(T0 + timedelta(days=2))


def test_allow_access_policies_do_not_cap_the_file_at_the_license_expiry() -> None:
    pol = policy(expiration_strategy="ALLOW_ACCESS")
    lic, plan = checked_out(pol, expires_in=timedelta(days=2))
    content = render_file(lic, pol, plan, kid="k1", at=T0)
    assert content.header["expiresAt"] == iso_ms(T0 + timedelta(days=7))


def test_a_renewal_moves_the_file_expiry_forward_up_to_the_checkout_end() -> None:
    pol = policy()
    lic, plan = checked_out(pol, expires_in=timedelta(days=2))
    before = render_file(lic, pol, plan, kid="k1", at=T0)
    lic.renew(expires_at=T0 + timedelta(days=30), at=T0 + timedelta(hours=1))
    after = render_file(lic, pol, plan, kid="k1", at=T0 + timedelta(hours=1))
    assert after.header["expiresAt"] == iso_ms(T0 + timedelta(days=7))
    assert after.payload["license"]["expiresAt"] == iso_ms(T0 + timedelta(days=30))
    assert after.digest != before.digest


def test_a_suspended_license_gets_a_file_born_expired() -> None:
    pol = policy()
    lic, plan = checked_out(pol)
    later = T0 + timedelta(hours=3)
    lic.suspend(at=later)
    content = render_file(lic, pol, plan, kid="k1", at=later)
    assert content.header["expiresAt"] == content.header["issuedAt"] == iso_ms(later)
    assert content.payload["license"]["status"] == "suspended"


def test_a_deactivated_machine_gets_a_file_born_expired() -> None:
    pol = policy()
    lic, plan = checked_out(pol)
    lic.deactivate_machine(machine_id=lic.active_machines[0].id, at=T0 + timedelta(hours=1))
    content = render_file(lic, pol, plan, kid="k1", at=T0 + timedelta(hours=1))
    assert content.expires_at == content.issued_at
    assert content.payload["machine"] is None


def test_the_digest_ignores_the_issue_time_only() -> None:
    pol = policy()
    lic, plan = checked_out(pol)
    first = render_file(lic, pol, plan, kid="k1", at=T0)
    again = render_file(lic, pol, plan, kid="k1", at=T0 + timedelta(minutes=5))
    assert first.digest == again.digest
    assert render_file(lic, pol, plan, kid="k2", at=T0).digest != first.digest
    lic.increment_usage(increment=1, max_uses=None, at=T0)  # usage does not churn files
    assert render_file(lic, pol, plan, kid="k1", at=T0).digest == first.digest


def test_the_rules_read_from_the_policy_document_are_the_aggregates() -> None:
    from projections.catalogue import policy_document  # noqa: PLC0415 (read model side)

    pol = policy(max_machines=5, offline_max_days=30, expiration_strategy="ALLOW_ACCESS")
    pol.attach_entitlements(codes=["pro", "team"], at=T0)
    assert OfflinePolicy.from_document(policy_document(pol)) == OfflinePolicy.of(pol)
