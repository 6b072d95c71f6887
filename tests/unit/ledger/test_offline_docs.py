"""The client-side snippet of docs/offline.md works as documented (it is run, not read)."""

from __future__ import annotations

import re
import time
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

from nacl.signing import SigningKey

from ledger.crypto import spki_base64
from ledger.offline.certificate import sign_certificate

DOC = Path(__file__).resolve().parents[3] / "docs" / "offline.md"
SEED = bytes(SigningKey.generate())
PUBLIC_KEY = spki_base64(bytes(SigningKey(SEED).verify_key))
RETIRED_KEY = spki_base64(bytes(SigningKey.generate().verify_key))


def snippet() -> dict[str, Any]:
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)
    assert code is not None
    namespace: dict[str, Any] = {}
    exec(compile(code.group(1), str(DOC), "exec"), namespace)
    return namespace


def certificate(*, issued: datetime, expires: datetime, encrypted: bool = False) -> str:
    def iso(moment: datetime) -> str:
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    header: dict[str, Any] = {
        "version": 1, "algorithm": "Ed25519", "kid": "k", "issuedAt": iso(issued),
        "expiresAt": iso(expires), "licenseId": "00000000-0000-4000-8000-000000000001",
        "fingerprint": "fp-docs-1",
    }  # fmt: skip
    if encrypted:
        header["encrypted"] = True
    return sign_certificate(header, {"entitlements": ["pro"]}, seed=SEED)


def test_the_documented_check_accepts_a_current_file_and_refuses_the_rest() -> None:
    verify = snippet()["verify_license_file"]
    now = datetime.now(UTC)
    good = certificate(issued=now - timedelta(minutes=1), expires=now + timedelta(days=1))
    keys = [RETIRED_KEY, PUBLIC_KEY]
    state: dict[str, float] = {}
    assert verify(good, keys, "fp-docs-1", state) == {"entitlements": ["pro"]}
    assert state["last_seen"] <= time.time()
    assert verify(good, keys, "fp-another", state) is None
    assert verify(good, [RETIRED_KEY], "fp-docs-1", state) is None
    expired = certificate(issued=now - timedelta(days=2), expires=now - timedelta(days=1))
    assert verify(expired, keys, "fp-docs-1", state) is None
    turned_back = {"last_seen": time.time() + 86400}
    assert verify(good, keys, "fp-docs-1", turned_back) is None
    sealed = certificate(issued=now, expires=now + timedelta(days=1), encrypted=True)
    assert verify(sealed, keys, "fp-docs-1", {}) == {}
