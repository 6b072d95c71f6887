"""Encrypted payloads: AES-256-GCM under a key derived from the license key.

Construction (version 1, documented in docs/offline.md):

- file key = HKDF-SHA256(ikm = the license key as UTF-8, salt = the 16 bytes of the
  license id, info = `licentric/offline-file/v1`, length = 32). The license key carries
  >= 80 bits of entropy, so a fast KDF is enough; the salt makes every license's key
  distinct even if two license keys were equal.
- payload part = base64(nonce (12 random bytes) || ciphertext || tag (16 bytes)) of the
  payload JSON, with the ASCII `b64(header)` as associated data: a payload cannot be
  moved under another header (another license, expiry or fingerprint) without failing.

The server never stores the license key. It stores the *file key* sealed under the
master key (see `ledger.offline.keys`), which can only ever open offline files.
"""

from __future__ import annotations

import base64
import secrets
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

FILE_KEY_INFO = b"licentric/offline-file/v1"
FILE_KEY_BYTES = 32
NONCE_BYTES = 12


class PayloadDecryptionError(ValueError):
    """The key is not the file's (wrong license key) or the payload was altered."""


def derive_file_key(license_key: str, license_id: UUID) -> bytes:
    hkdf = HKDF(
        algorithm=hashes.SHA256(), length=FILE_KEY_BYTES, salt=license_id.bytes, info=FILE_KEY_INFO
    )
    return hkdf.derive(license_key.encode())


def encrypt_payload(file_key: bytes, payload: bytes, header_b64: str) -> str:
    """The payload part of an encrypted file (standard base64, padded)."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = AESGCM(file_key).encrypt(nonce, payload, header_b64.encode("ascii"))
    return base64.b64encode(nonce + sealed).decode("ascii")


def decrypt_payload(file_key: bytes, payload_raw: bytes, header_b64: str) -> bytes:
    """`payload_raw` is the base64-decoded payload part: nonce || ciphertext || tag."""
    if len(payload_raw) < NONCE_BYTES + 16:
        msg = "the encrypted payload is too short"
        raise PayloadDecryptionError(msg)
    try:
        return AESGCM(file_key).decrypt(
            payload_raw[:NONCE_BYTES], payload_raw[NONCE_BYTES:], header_b64.encode("ascii")
        )
    except InvalidTag:
        msg = "the payload does not decrypt with this license key"
        raise PayloadDecryptionError(msg) from None
