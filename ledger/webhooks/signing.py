"""Webhook secrets and the two signature schemes sent on every attempt (API.md §6).

- Licentric: `X-Licentric-Signature` = hex HMAC-SHA256 keyed with the secret *text*
  (`whsec_…` included) over `"<ts>." + body`; what the official SDK's
  `licentric.webhook.verify_webhook` checks.
- Standard Webhooks: `webhook-signature` = `v1,` + base64 HMAC-SHA256 keyed with the
  base64-decoded part after `whsec_`, over `"<id>.<ts>." + body`.

One timestamp per attempt feeds both, so a receiver may check either.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
SECRET_BYTES = 32


def new_webhook_secret() -> str:
    """`whsec_` + base64 of 32 random bytes (also a valid Standard Webhooks secret)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def licentric_signature(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def standard_signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    message = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Every signing header of one attempt, computed with one timestamp."""
    return {
        "X-Licentric-Timestamp": str(timestamp),
        "X-Licentric-Signature": licentric_signature(secret, timestamp, body),
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": standard_signature(secret, message_id, timestamp, body),
    }
