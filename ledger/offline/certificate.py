"""Signing, armouring and verifying license files (API.md §7).

```
-----BEGIN LICENSE FILE-----
<b64(header)>.<b64(payload)>.<b64(signature)>
-----END LICENSE FILE-----
```

Standard base64 with padding; the signature is Ed25519 over the ASCII bytes
`b64(header) + "." + b64(payload)` — the text, not the decoded JSON, so any changed
character of either part breaks it. This is exactly what the official SDK's
`verify_offline` checks.

The verifier here is stricter than the SDK's: it accepts only the canonical base64 of
each part. Python's lenient `b64decode` (which the SDK uses) ignores the 4 unused low
bits of the signature's last base64 digit, so 15 other spellings of a signature decode
to the same bytes; ours refuses them, so a file is valid in exactly one spelling.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any
from uuid import UUID

import orjson
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey
from nacl.signing import VerifyKey

from ledger.domain.timestamps import require_utc
from ledger.offline.encryption import PayloadDecryptionError
from ledger.offline.encryption import decrypt_payload
from ledger.offline.encryption import derive_file_key
from ledger.offline.encryption import encrypt_payload

BEGIN = "-----BEGIN LICENSE FILE-----"
END = "-----END LICENSE FILE-----"
MEDIA_TYPE = "application/x-licentric-license"
FILE_NAME = "license.lic"
VERSION = 1
ALGORITHM = "Ed25519"
ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")
# How far ahead of the verifier's clock a file's issuedAt may be (clock skew) before the
# verifier suspects its clock was turned back.
CLOCK_TOLERANCE = timedelta(minutes=5)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def encode_json(document: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON in the document's own key order."""
    return orjson.dumps(document)


def sign_certificate(
    header: dict[str, Any],
    payload: dict[str, Any],
    *,
    seed: bytes,
    file_key: bytes | None = None,
) -> str:
    """render -> (encrypt) -> sign -> armour. `file_key` set: the payload is encrypted."""
    header_b64 = b64(encode_json(header))
    body = encode_json(payload)
    payload_b64 = b64(body) if file_key is None else encrypt_payload(file_key, body, header_b64)
    signed = f"{header_b64}.{payload_b64}"
    # `.signature` only: the full `sign()` result is signature || message.
    signature = _signing_key(seed).sign(signed.encode("ascii")).signature
    return f"{BEGIN}\n{signed}.{b64(signature)}\n{END}\n"


# Deriving the key pair from the seed costs about as much as signing; an environment
# signs every file with one seed (ledger/offline/keys.py keeps it open likewise).
@lru_cache(maxsize=1024)
def _signing_key(seed: bytes) -> SigningKey:
    return SigningKey(seed)


class Reason(StrEnum):
    """Why a file is not valid; the CLI prints it and tests assert it."""

    MALFORMED = "MALFORMED"
    BAD_SIGNATURE = "BAD_SIGNATURE"
    UNSUPPORTED_VERSION = "UNSUPPORTED_VERSION"
    EXPIRED = "EXPIRED"
    FINGERPRINT_MISMATCH = "FINGERPRINT_MISMATCH"
    NOT_DECRYPTABLE = "NOT_DECRYPTABLE"
    CLOCK_BEHIND = "CLOCK_BEHIND"


class InvalidLicenseFileError(ValueError):
    """Nothing in the file can be trusted: not a license file, or not signed by these keys."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Problem:
    reason: Reason
    message: str


@dataclass(frozen=True)
class Verification:
    """An authentic file: its header, its payload (None: encrypted and no key given),
    the public key that verified it, and what makes it unusable now, if anything."""

    header: dict[str, Any]
    payload: dict[str, Any] | None
    public_key: str
    problem: Problem | None

    @property
    def valid(self) -> bool:
        return self.problem is None


@dataclass(frozen=True)
class Parts:
    header_b64: str
    payload_b64: str
    signature_b64: str

    @property
    def signed(self) -> bytes:
        return f"{self.header_b64}.{self.payload_b64}".encode("ascii")


def _strict_b64(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidLicenseFileError(Reason.MALFORMED, f"the {what} is not base64") from None
    if b64(raw) != text:
        raise InvalidLicenseFileError(Reason.MALFORMED, f"the {what} is not canonical base64")
    return raw


def split_certificate(text: str) -> Parts:
    """The three parts of an armoured file; anything else around them is refused."""
    lines = text.strip().splitlines()
    if len(lines) != 3 or lines[0] != BEGIN or lines[2] != END:
        msg = f"expected {BEGIN}, one line of content and {END}"
        raise InvalidLicenseFileError(Reason.MALFORMED, msg)
    parts = lines[1].split(".")
    if len(parts) != 3:
        msg = "expected three dot-separated parts: header, payload, signature"
        raise InvalidLicenseFileError(Reason.MALFORMED, msg)
    return Parts(*parts)


def public_key_raw(public_key_b64: str) -> bytes:
    """The 32 raw bytes of a base64 DER SubjectPublicKeyInfo Ed25519 key."""
    try:
        der = base64.b64decode(public_key_b64, validate=True)
    except (binascii.Error, ValueError):
        der = b""
    if len(der) != len(ED25519_SPKI_PREFIX) + 32 or not der.startswith(ED25519_SPKI_PREFIX):
        msg = "the public key is not a base64 SubjectPublicKeyInfo of an Ed25519 key"
        raise ValueError(msg)
    return der[len(ED25519_SPKI_PREFIX) :]


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise InvalidLicenseFileError(Reason.MALFORMED, f"the {what} is not JSON") from None
    if not isinstance(document, dict):
        raise InvalidLicenseFileError(Reason.MALFORMED, f"the {what} is not a JSON object")
    return document


def _signer(parts: Parts, signature: bytes, public_keys: list[str]) -> str:
    for public_key in public_keys:
        try:
            VerifyKey(public_key_raw(public_key)).verify(parts.signed, signature)
        except BadSignatureError:
            continue
        return public_key
    raise InvalidLicenseFileError(Reason.BAD_SIGNATURE, "the signature does not match these keys")


def parse_time(value: object, field: str) -> datetime:
    if not isinstance(value, str):
        raise InvalidLicenseFileError(Reason.MALFORMED, f"header {field} is missing")
    try:
        return require_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        msg = f"header {field} is not a timestamp"
        raise InvalidLicenseFileError(Reason.MALFORMED, msg) from None


def verify_certificate(
    text: str,
    public_keys: list[str],
    *,
    now: datetime,
    fingerprint: str | None = None,
    license_key: str | None = None,
) -> Verification:
    """Authenticate a file, then say whether it may be used at `now` on `fingerprint`.

    Raises InvalidLicenseFileError when the file is not authentic (format, signature,
    version). An authentic file that is expired, bound to another fingerprint, issued
    in the verifier's future or not decryptable comes back with its `problem`.
    """
    parts = split_certificate(text)
    header_raw = _strict_b64(parts.header_b64, "header")
    payload_raw = _strict_b64(parts.payload_b64, "payload")
    signature = _strict_b64(parts.signature_b64, "signature")
    if len(signature) != 64:
        raise InvalidLicenseFileError(Reason.MALFORMED, "the signature is not 64 bytes")
    public_key = _signer(parts, signature, public_keys)
    header = _json_object(header_raw, "header")
    version = header.get("version")
    if isinstance(version, bool) or version != VERSION or header.get("algorithm") != ALGORITHM:
        msg = f"unsupported file version {version!r} / algorithm {header.get('algorithm')!r}"
        raise InvalidLicenseFileError(Reason.UNSUPPORTED_VERSION, msg)
    issued_at = parse_time(header.get("issuedAt"), "issuedAt")
    expires_at = parse_time(header.get("expiresAt"), "expiresAt")
    payload, problem = _payload(parts, header, payload_raw, license_key)
    if problem is None:
        problem = _usability(header, issued_at, expires_at, require_utc(now), fingerprint)
    return Verification(header, payload, public_key, problem)


def _usability(
    header: dict[str, Any],
    issued_at: datetime,
    expires_at: datetime,
    now: datetime,
    fingerprint: str | None,
) -> Problem | None:
    if issued_at - CLOCK_TOLERANCE > now:
        return Problem(
            Reason.CLOCK_BEHIND,
            f"the file was issued at {header['issuedAt']}, after this clock's time: "
            "the clock is wrong or was turned back",
        )
    if expires_at <= now:
        return Problem(Reason.EXPIRED, f"the file expired at {header['expiresAt']}")
    bound = header.get("fingerprint")
    if fingerprint is not None and bound != fingerprint:
        return Problem(
            Reason.FINGERPRINT_MISMATCH,
            f"the file is bound to fingerprint {bound!r}, not {fingerprint!r}",
        )
    return None


def _payload(
    parts: Parts, header: dict[str, Any], payload_raw: bytes, license_key: str | None
) -> tuple[dict[str, Any] | None, Problem | None]:
    if header.get("encrypted") is not True:
        return _json_object(payload_raw, "payload"), None
    if license_key is None:
        return None, None
    try:
        license_id = UUID(str(header.get("licenseId")))
    except ValueError:
        raise InvalidLicenseFileError(Reason.MALFORMED, "header licenseId is not a UUID") from None
    try:
        file_key = derive_file_key(license_key, license_id)
        plain = decrypt_payload(file_key, payload_raw, parts.header_b64)
    except PayloadDecryptionError as e:
        return None, Problem(Reason.NOT_DECRYPTABLE, str(e))
    return _json_object(plain, "payload"), None
