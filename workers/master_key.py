"""The master key, for loops that open sealed secrets (the re-signer opens signing seeds).

`licentric worker` resolves the configuration first and hands the key on the way the
API gets it: `LICENTRIC_MASTER_KEY` (base64 of 32 bytes) or, in embedded mode,
`LICENTRIC_MASTER_KEY_FILE` pointing at the generated key. Read only by the composition
root (workers/__main__.py).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from pathlib import Path

MASTER_KEY_BYTES = 32


class MasterKeyMissingError(RuntimeError):
    """Neither variable is set, or the key is not base64 of 32 bytes."""


def master_key_from_env(environ: Mapping[str, str]) -> bytes:
    text = environ.get("LICENTRIC_MASTER_KEY", "").strip()
    source = "LICENTRIC_MASTER_KEY"
    if not text and (path := environ.get("LICENTRIC_MASTER_KEY_FILE", "").strip()):
        source = "LICENTRIC_MASTER_KEY_FILE"
        try:
            text = Path(path).read_text(encoding="ascii").strip()
        except OSError as e:
            msg = f"{source}: cannot read {path}: {e.strerror}"
            raise MasterKeyMissingError(msg) from e
    if not text:
        msg = "LICENTRIC_MASTER_KEY (or LICENTRIC_MASTER_KEY_FILE) is not set"
        raise MasterKeyMissingError(msg)
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != MASTER_KEY_BYTES:
        msg = f"{source} must be base64 of exactly {MASTER_KEY_BYTES} bytes"
        raise MasterKeyMissingError(msg)
    return key
