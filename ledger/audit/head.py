"""The signed head of a tenant's hash chain (`GET /audit/head`, the last line of an export).

The head names the newest position and its chain hash; since every hash covers the
previous one, it commits to the whole log up to there. It is signed with the
environment's Ed25519 signing key (the key that signs offline license files, whose
public key the account holder already has). The signed message is the sorted-key
compact JSON of

    {"environmentId", "hash" (hex), "kid", "position", "signedAt", "type"}

with `type` = "licentric.audit-head.v1" (so it can never be mistaken for a license
file, whose signed bytes are base64 text). Anyone holding the public key can check it:
`verify_head`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey
from nacl.signing import VerifyKey

from ledger.accounts import signing_seed_context
from ledger.crypto import decrypt
from ledger.domain.environment import Environment
from ledger.domain.timestamps import iso_ms

HEAD_TYPE = "licentric.audit-head.v1"
_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")


@dataclass(frozen=True)
class SignedHead:
    environment_id: UUID
    position: int
    hash: str  # hex
    signed_at: str  # ISO 8601, milliseconds, Z
    kid: str
    signature: str  # base64 Ed25519 signature of `message()`

    def message(self) -> bytes:
        return head_message(self.environment_id, self.position, self.hash, self.signed_at, self.kid)

    def document(self) -> dict[str, Any]:
        return {
            "environmentId": str(self.environment_id),
            "position": self.position,
            "hash": self.hash,
            "signedAt": self.signed_at,
            "kid": self.kid,
            "signature": self.signature,
        }

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> SignedHead:
        return cls(
            environment_id=UUID(doc["environmentId"]),
            position=doc["position"],
            hash=doc["hash"],
            signed_at=doc["signedAt"],
            kid=doc["kid"],
            signature=doc["signature"],
        )


def head_message(
    environment_id: UUID, position: int, hash_hex: str, signed_at: str, kid: str
) -> bytes:
    return orjson.dumps(
        {
            "environmentId": str(environment_id),
            "hash": hash_hex,
            "kid": kid,
            "position": position,
            "signedAt": signed_at,
            "type": HEAD_TYPE,
        },
        option=orjson.OPT_SORT_KEYS,
    )


def sign_head(
    environment: Environment,
    master_key: bytes,
    *,
    position: int,
    chain_hash: bytes,
    at: datetime,
) -> SignedHead:
    """Sign with the environment's active key (its seed decrypted only for this)."""
    key = environment.active_signing_key
    seed = decrypt(
        master_key, key.encrypted_seed, context=signing_seed_context(environment.id, key.kid)
    )
    signed_at = iso_ms(at)
    message = head_message(environment.id, position, chain_hash.hex(), signed_at, key.kid)
    signature = SigningKey(seed).sign(message).signature
    return SignedHead(
        environment_id=environment.id,
        position=position,
        hash=chain_hash.hex(),
        signed_at=signed_at,
        kid=key.kid,
        signature=base64.b64encode(signature).decode(),
    )


class HeadSignatureError(ValueError):
    """The head is not signed by the given public key."""


def kid_of(public_key_b64: str) -> str:
    """The key id the server gives a public key (ledger.crypto.NewSigningKey)."""
    return hashlib.sha256(public_key_b64.encode()).hexdigest()[:16]


def verify_head(head: SignedHead, public_key_b64: str) -> None:
    """Raise HeadSignatureError unless `head` is signed by `public_key_b64` (base64 SPKI)."""
    try:
        der = base64.b64decode(public_key_b64, validate=True)
        signature = base64.b64decode(head.signature, validate=True)
    except (binascii.Error, ValueError):
        raise HeadSignatureError("the public key or the signature is not base64") from None
    if len(der) != len(_SPKI_PREFIX) + 32 or not der.startswith(_SPKI_PREFIX):
        raise HeadSignatureError("the public key is not an Ed25519 SubjectPublicKeyInfo")
    if head.kid != kid_of(public_key_b64):
        msg = f"the head was signed by key {head.kid}, not by this public key"
        raise HeadSignatureError(msg)
    try:
        VerifyKey(der[len(_SPKI_PREFIX) :]).verify(head.message(), signature)
    except (BadSignatureError, ValueError):
        # nacl's ValueError: a signature that is not 64 bytes long.
        raise HeadSignatureError("the signature does not match the head") from None
