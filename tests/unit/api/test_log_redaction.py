"""Rendered log lines never carry an API key, a license key or a webhook secret."""

from __future__ import annotations

import logging

from hypothesis import given
from hypothesis import strategies as st

from api.logging import JsonFormatter
from api.logging import redact
from ledger.crypto import new_api_key
from ledger.crypto import new_license_key


def render(message: str, *args: object, **extra: object) -> str:
    record = logging.LogRecord("t", logging.DEBUG, __file__, 1, message, args, None)
    for key, value in extra.items():
        setattr(record, key, value)
    return JsonFormatter().format(record)


def test_a_request_line_for_a_license_key_is_masked() -> None:
    key = new_license_key("ACME")

    line = render("%s %s", "GET", f"/api/v1/licenses/by-key/{key}")

    assert key not in line
    assert "/api/v1/licenses/by-key/[REDACTED]" in line


def test_keys_in_messages_and_extras_are_masked() -> None:
    api_key, license_key = new_api_key("live"), new_license_key("LIC")
    secret = "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0cw=="

    line = render("saw %s", f"Bearer {api_key}", extra_field=[license_key, secret])

    for value in (api_key, license_key, secret):
        assert value not in line
    assert "lk_live_[REDACTED]" in line


@given(prefix=st.from_regex(r"[A-Z]{2,10}", fullmatch=True), text=st.text(max_size=40))
def test_every_license_key_is_masked_whatever_surrounds_it(prefix: str, text: str) -> None:
    key = new_license_key(prefix)

    assert key not in redact(f"{text} {key} {text}")


def test_ordinary_lines_are_unchanged() -> None:
    line = "listening on http://127.0.0.1:8000, database: postgresql://db/licentric"

    assert redact(line) == line
