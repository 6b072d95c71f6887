"""Both signature schemes verify with the receivers' own libraries (API.md §6)."""

from __future__ import annotations

import base64
import time

import orjson
import pytest
import standardwebhooks
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from licentric.webhook import WebhookSignatureError
from licentric.webhook import verify_webhook

from ledger.webhooks.signing import SECRET_PREFIX
from ledger.webhooks.signing import new_webhook_secret
from ledger.webhooks.signing import signature_headers

MESSAGE_ID = "evt_" + "ab" * 16


def envelope(data: dict[str, object]) -> bytes:
    return orjson.dumps(
        {
            "id": MESSAGE_ID,
            "type": "license.created",
            "createdAt": "2026-01-15T10:30:00.000Z",
            "sequence": 1,
            "data": data,
        }
    )


def test_secret_is_whsec_and_32_random_bytes() -> None:
    secret = new_webhook_secret()
    assert secret.startswith(SECRET_PREFIX)
    assert len(base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)) == 32
    assert new_webhook_secret() != secret


@settings(max_examples=50)
@given(data=st.dictionaries(st.text(max_size=10), st.text(max_size=30), max_size=5))
def test_every_attempt_verifies_with_the_sdk_and_standard_webhooks(
    data: dict[str, object],
) -> None:
    secret = new_webhook_secret()
    body = envelope(data)
    ts = int(time.time())
    headers = signature_headers(secret, MESSAGE_ID, ts, body)

    event = verify_webhook(
        body, headers["X-Licentric-Signature"], headers["X-Licentric-Timestamp"], secret
    )
    assert event.id == MESSAGE_ID
    assert event.data == data
    verified = standardwebhooks.Webhook(secret).verify(body, headers)
    assert verified["data"] == data
    assert headers["webhook-timestamp"] == headers["X-Licentric-Timestamp"] == str(ts)
    assert headers["webhook-id"] == MESSAGE_ID


def test_a_changed_byte_or_another_secret_fails_both() -> None:
    secret = new_webhook_secret()
    body = envelope({"id": "x"})
    headers = signature_headers(secret, MESSAGE_ID, int(time.time()), body)
    tampered = body.replace(b'"x"', b'"y"')
    with pytest.raises(WebhookSignatureError):
        verify_webhook(
            tampered, headers["X-Licentric-Signature"], headers["X-Licentric-Timestamp"], secret
        )
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(secret).verify(tampered, headers)
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(new_webhook_secret()).verify(body, headers)
