"""The codes are the wire contract of API.md."""

from __future__ import annotations

from ledger.domain.codes import ErrorCode
from ledger.domain.codes import LicenseStatus
from ledger.domain.codes import Scope
from ledger.domain.codes import ValidationCode
from ledger.domain.codes import WebhookEventType
from ledger.domain.errors import LicenseStateError


def test_error_codes_match_the_api_table() -> None:
    assert len(ErrorCode) == 20
    assert all(code.value == code.name for code in ErrorCode)


def test_validation_codes_match_the_check_order_table() -> None:
    assert len(ValidationCode) == 12


def test_every_scope_has_a_resource_and_an_access() -> None:
    assert all(len(scope.value.split(":")) == 2 for scope in Scope)
    assert len(Scope) == 15


def test_webhook_types_are_dotted() -> None:
    assert all("." in t.value for t in WebhookEventType)
    assert WebhookEventType("license.limit_reached")


def test_license_state_errors_carry_the_status_code() -> None:
    for status in (LicenseStatus.SUSPENDED, LicenseStatus.EXPIRED):
        assert LicenseStateError(status).code == f"LICENSE_{status.upper()}"
