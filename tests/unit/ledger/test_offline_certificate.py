"""License files: sign -> verify round trips, and any changed character is refused.

Both verifiers are exercised: ours (`ledger.offline.certificate.verify_certificate`) and
the official SDK's `Licentric.verify_offline`.
"""

from __future__ import annotations

import base64
import contextlib
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from licentric import Licentric
from nacl.signing import SigningKey

from ledger.crypto import spki_base64
from ledger.offline.certificate import BEGIN
from ledger.offline.certificate import END
from ledger.offline.certificate import InvalidLicenseFileError
from ledger.offline.certificate import Reason
from ledger.offline.certificate import sign_certificate
from ledger.offline.certificate import split_certificate
from ledger.offline.certificate import verify_certificate
from ledger.offline.encryption import derive_file_key

NOW = datetime.now(UTC)
LICENSE_ID = uuid4()
LICENSE_KEY = "LIC-ABCD-EFGH-JKLM-NPQR"
SEED = bytes(SigningKey.generate())
PUBLIC_KEY = spki_base64(bytes(SigningKey(SEED).verify_key))
OTHER_PUBLIC_KEY = spki_base64(bytes(SigningKey.generate().verify_key))
B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def header(**changes: Any) -> dict[str, Any]:
    return {
        "version": 1,
        "algorithm": "Ed25519",
        "kid": "k1",
        "issuedAt": iso(NOW - timedelta(minutes=1)),
        "expiresAt": iso(NOW + timedelta(days=14)),
        "licenseId": str(LICENSE_ID),
        "fingerprint": "fp-00000001",
        **changes,
    }


PAYLOAD = {"license": {"id": str(LICENSE_ID), "status": "active"}, "entitlements": ["pro"]}
CERTIFICATE = sign_certificate(header(), PAYLOAD, seed=SEED)
ENCRYPTED = sign_certificate(
    header(encrypted=True), PAYLOAD, seed=SEED, file_key=derive_file_key(LICENSE_KEY, LICENSE_ID)
)


def sdk_accepts(certificate: str, public_key: str = PUBLIC_KEY) -> bool:
    return Licentric.verify_offline(certificate.encode(), public_key).valid


def ours_accepts(certificate: str, public_key: str = PUBLIC_KEY) -> bool:
    try:
        return verify_certificate(certificate, [public_key], now=NOW).valid
    except InvalidLicenseFileError:
        return False


def test_a_signed_file_verifies_with_ours_and_the_sdk() -> None:
    verified = verify_certificate(CERTIFICATE, [PUBLIC_KEY], now=NOW)
    assert verified.valid
    assert verified.header == header()
    assert verified.payload == PAYLOAD
    result = Licentric.verify_offline(CERTIFICATE.encode(), PUBLIC_KEY)
    assert result.valid
    assert result.signature_valid
    assert not result.expired
    assert result.header is not None
    assert result.header["version"] == 1


def test_the_file_is_armoured_standard_base64_on_one_line() -> None:
    lines = CERTIFICATE.splitlines()
    assert lines[0] == BEGIN
    assert lines[2] == END
    assert len(lines) == 3
    parts = split_certificate(CERTIFICATE)
    assert base64.b64decode(parts.header_b64, validate=True).startswith(b'{"version":1,')
    assert len(base64.b64decode(parts.signature_b64, validate=True)) == 64


def test_another_environments_key_rejects_the_file() -> None:
    with pytest.raises(InvalidLicenseFileError) as caught:
        verify_certificate(CERTIFICATE, [OTHER_PUBLIC_KEY], now=NOW)
    assert caught.value.reason is Reason.BAD_SIGNATURE
    assert not sdk_accepts(CERTIFICATE, OTHER_PUBLIC_KEY)


def test_any_listed_key_may_verify_a_file() -> None:
    verified = verify_certificate(CERTIFICATE, [OTHER_PUBLIC_KEY, PUBLIC_KEY], now=NOW)
    assert verified.public_key == PUBLIC_KEY


def _flip(certificate: str, part: int, index: int, replacement: str) -> tuple[str, bool]:
    """The file with one character of a part replaced; and whether the SDK's lenient
    base64 still decodes the part to the very same bytes (see `test_sdk_...` below)."""
    parts = split_certificate(certificate)
    texts = [parts.header_b64, parts.payload_b64, parts.signature_b64]
    original = texts[part]
    index %= len(original)
    changed = original[:index] + replacement + original[index + 1 :]
    texts[part] = changed
    same_bytes = False
    with contextlib.suppress(ValueError):
        same_bytes = base64.b64decode(changed) == base64.b64decode(original)
    return f"{BEGIN}\n{'.'.join(texts)}\n{END}\n", same_bytes


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    part=st.sampled_from([0, 1, 2]),
    index=st.integers(min_value=0, max_value=10_000),
    replacement=st.characters(codec="ascii", exclude_characters="\n\r"),
    encrypted=st.booleans(),
)
def test_changing_any_character_is_refused(
    part: int, index: int, replacement: str, encrypted: bool
) -> None:
    original = ENCRYPTED if encrypted else CERTIFICATE
    tampered, same_bytes = _flip(original, part, index, replacement)
    if tampered == original:
        return
    assert not ours_accepts(tampered)
    if not same_bytes:
        assert not sdk_accepts(tampered)


@settings(max_examples=300, deadline=None)
@given(
    part=st.sampled_from([0, 1, 2]),
    index=st.integers(min_value=0, max_value=10_000),
    mask=st.integers(min_value=1, max_value=255),
)
def test_flipping_bits_of_any_byte_is_refused(part: int, index: int, mask: int) -> None:
    parts = split_certificate(CERTIFICATE)
    text = [parts.header_b64, parts.payload_b64, parts.signature_b64][part]
    position = index % len(text)
    flipped = chr(ord(text[position]) ^ mask) if ord(text[position]) ^ mask < 128 else "\x80"
    tampered, same_bytes = _flip(CERTIFICATE, part, position, flipped)
    assert not ours_accepts(tampered)
    if not same_bytes:
        assert not sdk_accepts(tampered)


def test_sdk_cannot_see_the_unused_bits_of_the_last_signature_digit() -> None:
    """The one spelling change the SDK lets through, and why it is harmless.

    64 signature bytes take 86 base64 digits, the last carrying 4 unused bits; Python's
    lenient `b64decode` (the SDK's) ignores them, so 15 other digits there decode to the
    *same* signature bytes: the file's signed content and signature are unchanged. Our
    verifier accepts only the canonical spelling.
    """
    parts = split_certificate(CERTIFICATE)
    last = parts.signature_b64.rstrip("=")[-1]
    value = B64_ALPHABET.index(last)
    sibling = B64_ALPHABET[value ^ 1]
    tampered, same_bytes = _flip(CERTIFICATE, 2, len(parts.signature_b64) - 3, sibling)
    assert same_bytes
    assert sdk_accepts(tampered)
    assert not ours_accepts(tampered)


def test_an_encrypted_payload_opens_only_with_the_license_key() -> None:
    without = verify_certificate(ENCRYPTED, [PUBLIC_KEY], now=NOW)
    assert without.valid
    assert without.payload is None
    assert without.header["encrypted"] is True
    opened = verify_certificate(ENCRYPTED, [PUBLIC_KEY], now=NOW, license_key=LICENSE_KEY)
    assert opened.payload == PAYLOAD
    wrong = verify_certificate(ENCRYPTED, [PUBLIC_KEY], now=NOW, license_key="LIC-WRONG")
    assert wrong.problem is not None
    assert wrong.problem.reason is Reason.NOT_DECRYPTABLE
    assert sdk_accepts(ENCRYPTED)


def test_expired_files_are_refused_by_both() -> None:
    expired = sign_certificate(
        header(expiresAt=iso(NOW - timedelta(seconds=1))), PAYLOAD, seed=SEED
    )
    verified = verify_certificate(expired, [PUBLIC_KEY], now=NOW)
    assert verified.problem is not None
    assert verified.problem.reason is Reason.EXPIRED
    assert verified.payload == PAYLOAD  # authentic, just no longer usable
    result = Licentric.verify_offline(expired.encode(), PUBLIC_KEY)
    assert result.signature_valid
    assert result.expired
    assert not result.valid


def test_a_file_bound_to_another_fingerprint_is_refused() -> None:
    verified = verify_certificate(CERTIFICATE, [PUBLIC_KEY], now=NOW, fingerprint="fp-other")
    assert verified.problem is not None
    assert verified.problem.reason is Reason.FINGERPRINT_MISMATCH
    assert verify_certificate(CERTIFICATE, [PUBLIC_KEY], now=NOW, fingerprint="fp-00000001").valid


def test_a_clock_behind_the_issue_time_is_suspected() -> None:
    verified = verify_certificate(CERTIFICATE, [PUBLIC_KEY], now=NOW - timedelta(days=1))
    assert verified.problem is not None
    assert verified.problem.reason is Reason.CLOCK_BEHIND


@pytest.mark.parametrize("version", [2, "1", True, None], ids=["two", "string", "bool", "missing"])
def test_other_versions_are_refused(version: object) -> None:
    certificate = sign_certificate(header(version=version), PAYLOAD, seed=SEED)
    with pytest.raises(InvalidLicenseFileError) as caught:
        verify_certificate(certificate, [PUBLIC_KEY], now=NOW)
    assert caught.value.reason is Reason.UNSUPPORTED_VERSION
    if version is not True:  # the SDK compares `version != 1`, and True == 1 in Python
        assert not sdk_accepts(certificate)


@pytest.mark.parametrize(
    "text",
    ["", "garbage", f"{BEGIN}\na.b\n{END}", f"{BEGIN}\n{END}", CERTIFICATE.replace(BEGIN, "X")],
)
def test_malformed_files_are_refused(text: str) -> None:
    with pytest.raises(InvalidLicenseFileError) as caught:
        verify_certificate(text, [PUBLIC_KEY], now=NOW)
    assert caught.value.reason in {Reason.MALFORMED, Reason.BAD_SIGNATURE}
