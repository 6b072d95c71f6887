"""`licentric verify-file`: verifies offline, prints header and payload, and exits
non-zero with the reason when the file is invalid, expired or bound elsewhere."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from click.testing import CliRunner
from nacl.signing import SigningKey

from api.cli import cli
from ledger.crypto import spki_base64
from ledger.offline.certificate import sign_certificate
from ledger.offline.encryption import derive_file_key
from tests.support.processes import licentric_command

SEED = bytes(SigningKey.generate())
PUBLIC_KEY = spki_base64(bytes(SigningKey(SEED).verify_key))
OTHER_KEY = spki_base64(bytes(SigningKey.generate().verify_key))
LICENSE_ID = uuid4()
LICENSE_KEY = "LIC-2345-6789-ABCD-EFGH"
NOW = datetime.now(UTC)


def write(
    tmp_path: Path, *, expires_in: timedelta = timedelta(days=7), encrypt: bool = False
) -> Path:
    header: dict[str, Any] = {
        "version": 1,
        "algorithm": "Ed25519",
        "kid": "k1",
        "issuedAt": (NOW - timedelta(minutes=1)).isoformat().replace("+00:00", "Z"),
        "expiresAt": (NOW + expires_in).isoformat().replace("+00:00", "Z"),
        "licenseId": str(LICENSE_ID),
        "fingerprint": "fp-cli-0001",
    }
    if encrypt:
        header["encrypted"] = True
    payload = {"license": {"id": str(LICENSE_ID), "status": "active"}, "entitlements": ["pro"]}
    file_key = derive_file_key(LICENSE_KEY, LICENSE_ID) if encrypt else None
    path = tmp_path / "license.lic"
    path.write_text(sign_certificate(header, payload, seed=SEED, file_key=file_key))
    return path


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, ["verify-file", *args])


def test_a_valid_file_prints_header_and_payload(tmp_path: Path) -> None:
    """Through the installed console script, as a user runs it."""
    path = write(tmp_path)
    done = subprocess.run(
        [*licentric_command(), "verify-file", str(path), "--public-key", PUBLIC_KEY],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert '"licenseId": "' + str(LICENSE_ID) in done.stdout
    assert '"entitlements": [' in done.stdout
    assert "VALID" in done.stderr


def test_another_key_is_refused_with_a_reason(tmp_path: Path) -> None:
    result = run(str(write(tmp_path)), "--public-key", OTHER_KEY)
    assert result.exit_code == 4
    assert "BAD_SIGNATURE" in result.output


def test_a_retired_key_may_be_given_alongside(tmp_path: Path) -> None:
    path = str(write(tmp_path))
    assert run(path, "--public-key", OTHER_KEY, "--public-key", PUBLIC_KEY).exit_code == 0


def test_a_changed_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path)
    text = path.read_text()
    line = text.splitlines()[1]
    path.write_text(text.replace(line, line[:10] + ("A" if line[10] != "A" else "B") + line[11:]))
    result = run(str(path), "--public-key", PUBLIC_KEY)
    assert result.exit_code in {3, 4}
    assert "INVALID" in result.output


def test_an_expired_file_is_refused(tmp_path: Path) -> None:
    result = run(str(write(tmp_path, expires_in=-timedelta(hours=1))), "--public-key", PUBLIC_KEY)
    assert result.exit_code == 6
    assert "EXPIRED" in result.output


def test_a_file_bound_to_another_fingerprint_is_refused(tmp_path: Path) -> None:
    path = str(write(tmp_path))
    result = run(path, "--public-key", PUBLIC_KEY, "--fingerprint", "fp-someone-else")
    assert result.exit_code == 7
    assert "fp-cli-0001" in result.output
    assert run(path, "--public-key", PUBLIC_KEY, "--fingerprint", "fp-cli-0001").exit_code == 0


def test_an_encrypted_payload_is_shown_with_the_license_key(tmp_path: Path) -> None:
    path = str(write(tmp_path, encrypt=True))
    sealed = run(path, "--public-key", PUBLIC_KEY)
    assert sealed.exit_code == 0
    assert "pass --license-key" in sealed.output
    opened = run(path, "--public-key", PUBLIC_KEY, "--license-key", LICENSE_KEY)
    assert opened.exit_code == 0
    payload = opened.output.split("payload:\n", 1)[1].split("\nVALID", 1)[0]
    assert json.loads(payload)["entitlements"] == ["pro"]
    wrong = run(path, "--public-key", PUBLIC_KEY, "--license-key", "LIC-WRONG")
    assert wrong.exit_code == 8


@pytest.mark.parametrize("key", ["not base64!", "AAAA"])
def test_a_malformed_public_key_is_a_usage_error(tmp_path: Path, key: str) -> None:
    result = run(str(write(tmp_path)), "--public-key", key)
    assert result.exit_code == 2
    assert "--public-key" in result.output
