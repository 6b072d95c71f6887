"""Offline checkouts recorded in the license stream."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest

from ledger.application import STREAMS
from ledger.commands.checkouts import checked_out_event
from ledger.domain.codes import ErrorCode
from ledger.domain.errors import BusinessRuleViolation
from ledger.domain.errors import CheckoutTtlInvalid
from ledger.domain.errors import LicenseStateError
from ledger.domain.errors import NotFound
from ledger.domain.errors import OfflineNotAllowed
from ledger.domain.errors import ValidationFailed
from ledger.domain.license import License
from ledger.domain.license_checkouts import IssuedFile
from ledger.domain.license_checkouts import checked_out_fields
from ledger.store.mapper import EventNames
from ledger.store.mapper import StableNameMapper
from ledger.store.mapper import saving
from ledger.store.recorder import TenantRecorder

T0 = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)
FP = "fp-00000001"


def new_license() -> License:
    lic = License.create(
        id=uuid4(), product_id=uuid4(), policy_id=uuid4(), key_hash="ef" * 32, at=T0
    )
    lic.activate_machine(machine_id=uuid4(), fingerprint=FP, max_machines=None, at=T0)
    lic.collect_events()
    return lic


def checkout(lic: License, **kwargs: Any) -> Any:
    args: dict[str, Any] = {
        "checkout_id": uuid4(), "fingerprint": FP, "ttl": None, "kid": "k1",
        "offline_allowed": True, "offline_max_days": 14, "require_fingerprint": True,
        "expired_blocks": True, "at": T0,
    }  # fmt: skip
    args.update(kwargs)
    return lic.record_checkout(**args)


def test_checkout_defaults_to_fourteen_days() -> None:
    lic = new_license()
    result = checkout(lic)
    assert result.ttl == 1_209_600
    assert result.expires_at == T0 + timedelta(days=14)
    assert result.machine_id == lic.active_machines[0].id
    event = lic.collect_events()[-1]
    assert type(event).__name__ == "CheckedOut"
    assert vars(event)["expires_at"] == "2026-01-29T10:30:00.000000Z"


def test_default_ttl_is_capped_by_offline_max_days() -> None:
    assert checkout(new_license(), offline_max_days=7).ttl == 7 * 86400


@pytest.mark.parametrize("ttl", [3599, 7_776_001, 15 * 86400])
def test_ttl_out_of_range_is_refused(ttl: int) -> None:
    with pytest.raises(CheckoutTtlInvalid) as caught:
        checkout(new_license(), ttl=ttl)
    assert caught.value.code == ErrorCode.CHECKOUT_TTL_INVALID


def test_offline_not_allowed_is_refused() -> None:
    with pytest.raises(OfflineNotAllowed):
        checkout(new_license(), offline_allowed=False)


def test_checkout_of_a_suspended_license_is_refused() -> None:
    lic = new_license()
    lic.suspend(at=T0)
    with pytest.raises(LicenseStateError):
        checkout(lic)


def test_unknown_fingerprint_is_a_business_rule_violation() -> None:
    with pytest.raises(BusinessRuleViolation) as caught:
        checkout(new_license(), fingerprint="fp-unknown1")
    assert caught.value.details["reason"] == "FINGERPRINT_NOT_FOUND"


def test_fingerprint_is_required_when_the_policy_requires_it() -> None:
    with pytest.raises(ValidationFailed):
        checkout(new_license(), fingerprint=None)
    assert checkout(new_license(), fingerprint=None, require_fingerprint=False).machine_id is None


def test_regenerated_file_updates_the_checkout_key() -> None:
    lic = new_license()
    result = checkout(lic)
    lic.record_file_regenerated(checkout_id=result.id, kid="k2", at=T0)
    assert lic.checkouts(T0)[0].kid == "k2"
    assert lic.checkouts(T0 + timedelta(days=15)) == []
    with pytest.raises(NotFound):
        lic.record_file_regenerated(checkout_id=uuid4(), kid="k2", at=T0)


def issued(at: datetime, days: int = 14, text: str = "cert") -> IssuedFile:
    return IssuedFile(
        certificate=text, digest="d" * 64, issued_at=at, expires_at=at + timedelta(days=days)
    )


def test_the_checkout_event_carries_the_issued_file() -> None:
    lic = new_license()
    result = checkout(lic, file=issued(T0))
    assert result.file is not None
    assert result.file.certificate == "cert"
    event = vars(lic.collect_events()[-1])
    assert event["certificate"] == "cert"
    assert event["digest"] == "d" * 64


def test_planning_a_checkout_records_nothing() -> None:
    lic = new_license()
    plan = lic.plan_checkout(
        checkout_id=uuid4(), fingerprint=FP, ttl=None, kid="k1", offline_allowed=True,
        offline_max_days=14, require_fingerprint=True, expired_blocks=True, at=T0,
    )  # fmt: skip
    assert plan.expires_at == T0 + timedelta(days=14)
    assert lic.collect_events() == []
    assert lic.checkouts() == []


def test_a_regenerated_file_replaces_the_current_one() -> None:
    lic = new_license()
    result = checkout(lic, file=issued(T0))
    later = T0 + timedelta(days=1)
    new_file = issued(later, 13, "new")
    lic.record_file_regenerated(checkout_id=result.id, kid="k2", file=new_file, at=later)
    current = lic.checkout(result.id)
    assert current.kid == "k2"
    assert current.file is not None
    assert current.file.certificate == "new"
    assert current.file.issued_at == later
    assert vars(lic.collect_events()[-1])["certificate"] == "new"


def test_an_expired_checkout_is_not_regenerated_and_forgets_its_file() -> None:
    lic = new_license()
    old = checkout(lic, ttl=3600, file=issued(T0))
    later = T0 + timedelta(hours=2)
    with pytest.raises(BusinessRuleViolation) as caught:
        lic.record_file_regenerated(checkout_id=old.id, kid="k1", file=issued(later), at=later)
    assert caught.value.details["reason"] == "CHECKOUT_EXPIRED"
    checkout(lic, at=later, file=issued(later))  # the next event prunes expired files
    assert lic.checkout(old.id).file is None


def test_the_offline_file_key_is_sealed_once() -> None:
    lic = new_license()
    lic.seal_file_key(sealed_key="sealed", at=T0)
    lic.seal_file_key(sealed_key="sealed", at=T0)
    assert lic.sealed_file_key == "sealed"
    assert [type(e).__name__ for e in lic.collect_events()] == ["FileKeySealed"]


def test_the_row_a_read_model_checkout_appends_is_the_row_of_the_aggregates_event() -> None:
    """ledger.commands.checkouts.checked_out_event builds the log row field by field; it
    is the row TenantRecorder.chained makes of the event the aggregate records."""
    lic = new_license()
    terms: dict[str, Any] = {
        "checkout_id": uuid4(), "fingerprint": FP, "ttl": 86400, "kid": "k1",
        "offline_allowed": True, "offline_max_days": 14, "require_fingerprint": True,
        "expired_blocks": True, "at": T0 + timedelta(microseconds=123_457),
    }  # fmt: skip
    plan = lic.plan_checkout(**terms)
    file = issued(plan.issued_at)
    lic.record_checkout(file=file, **terms)
    [event] = lic.collect_events()
    EventNames.register(*STREAMS)
    with saving([lic]):  # as LedgerApplication.save names it
        stored = StableNameMapper(transcoder=None).to_stored_event(event)  # type: ignore[arg-type]
    tenant, metadata = uuid4(), {"actor": {"type": "api_key", "id": "k"}, "requestId": "r-1"}
    recorded_at = T0 + timedelta(seconds=1)

    direct = checked_out_event(
        recorded_at,
        tenant_id=tenant,
        license_id=lic.id,
        version=lic.version,
        fields=checked_out_fields(plan, file),
        metadata=metadata,
        occurred_at=plan.issued_at,
    )
    via_stored = [TenantRecorder.chained(tenant, stored, metadata, recorded_at)]
    assert direct == via_stored
    assert [e.append_row() for e in direct] == [e.append_row() for e in via_stored]
