"""Response signing (API.md §5.3): `X-Signature` over the exact bytes sent.

`X-Signature = hex(HMAC-SHA256(key = signingKey as UTF-8 text, "<ts>." + body))` with
`X-Signature-Timestamp: <ts>` (unix seconds), what the official SDK verifies. The
signing key is the environment's 64-hex response secret, stored AES-GCM encrypted; it is
decrypted once per process and kept in memory keyed by (tenant, ciphertext), so a
rotated secret (a new ciphertext in the read model) is picked up on the next request.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Callable
from uuid import UUID

from ledger.accounts import response_secret_context
from ledger.crypto import decrypt

SIGNATURE = "X-Signature"
TIMESTAMP = "X-Signature-Timestamp"
# Tenants seen by one process; cleared wholesale past this (a cheap bound, no LRU needed).
MAX_CACHED_SECRETS = 10_000


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    # hmac.new, not the one-shot hmac.digest: that releases the GIL (see
    # ledger.crypto.keyed_digest), once per validation.
    return hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_headers(secret: bytes, timestamp: int, body: bytes) -> dict[str, str]:
    return {TIMESTAMP: str(timestamp), SIGNATURE: signature(secret, timestamp, body)}


class ResponseSecrets:
    """Decrypted response secrets (as the UTF-8 bytes of their hex text), per tenant.

    `fallback(tenant)` gives the ciphertext when the read model has none (a row the
    migration could not backfill); it is called once per process per such tenant.
    """

    def __init__(self, master_key: bytes, fallback: Callable[[UUID], str]) -> None:
        self._master_key = master_key
        self._fallback = fallback
        self._cache: dict[tuple[UUID, str | None], bytes] = {}
        self._lock = threading.Lock()

    def secret(self, tenant_id: UUID, ciphertext: str | None) -> bytes:
        cached = self._cache.get((tenant_id, ciphertext))
        if cached is not None:
            return cached
        token = ciphertext if ciphertext is not None else self._fallback(tenant_id)
        plain = decrypt(self._master_key, token, context=response_secret_context(tenant_id))
        with self._lock:
            if len(self._cache) >= MAX_CACHED_SECRETS:
                self._cache.clear()
            self._cache[(tenant_id, ciphertext)] = plain
        return plain
