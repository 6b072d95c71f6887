"""Opaque cursors over a tenant's log (`GET /events`, `GET /licenses/{id}/events`).

A cursor is a log position with a MAC: base64url(position as 8 bytes ‖ the first 12
bytes of HMAC-SHA256(key, tenant ‖ position)), the key derived from the server pepper.
Clients can store and replay cursors but not forge or move them, and a cursor of one
environment is refused by another (400), which says nothing about the other's log.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from uuid import UUID

_TAG = 12
_POSITION = 8


class BadCursorError(ValueError):
    """Not a cursor this server issued for this environment."""


def _key(pepper: bytes) -> bytes:
    return hmac.new(pepper, b"licentric:event-cursor:v1", hashlib.sha256).digest()


def _tag(pepper: bytes, tenant_id: UUID, raw_position: bytes) -> bytes:
    mac = hmac.new(_key(pepper), tenant_id.bytes + raw_position, hashlib.sha256)
    return mac.digest()[:_TAG]


def encode_cursor(pepper: bytes, tenant_id: UUID, position: int) -> str:
    raw = position.to_bytes(_POSITION, "big")
    return base64.urlsafe_b64encode(raw + _tag(pepper, tenant_id, raw)).rstrip(b"=").decode()


def decode_cursor(pepper: bytes, tenant_id: UUID, cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raise BadCursorError(cursor) from None
    position, tag = raw[:_POSITION], raw[_POSITION:]
    if len(raw) != _POSITION + _TAG or not hmac.compare_digest(
        tag, _tag(pepper, tenant_id, position)
    ):
        raise BadCursorError(cursor)
    return int.from_bytes(position, "big")
