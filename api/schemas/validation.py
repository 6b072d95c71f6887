"""Validation (API.md §5): the request bodies and the always-200 result."""

from __future__ import annotations

from api.schemas.common import CODES
from api.schemas.common import TIMESTAMP
from api.schemas.common import UUID
from api.schemas.common import Schema
from api.schemas.common import document
from api.schemas.common import enum
from api.schemas.common import integer
from api.schemas.common import nullable
from api.schemas.common import one
from api.schemas.common import strict
from api.schemas.common import text
from ledger.domain.codes import HeartbeatStatus
from ledger.domain.codes import LicenseStatus
from ledger.domain.codes import ValidationCode

_FIELDS: dict[str, Schema] = {
    "fingerprint": nullable(text(256, 8)),
    "entitlements": {**CODES, "description": "Codes the caller needs (ENTITLEMENTS_MISSING)."},
    "nonce": text(128, description="Echoed in `metadata.nonce` (signed with the body)."),
}

VALIDATE_KEY = strict({"key": text(512, 1), **_FIELDS}, required=["key"])
VALIDATE = strict(_FIELDS)


def _closed(schema: Schema) -> Schema:
    """A response object that may carry nothing else (no PII, no hashes)."""
    return {**schema, "additionalProperties": False}


LICENSE = _closed(
    document(
        {
            "id": UUID,
            "status": enum(LicenseStatus),
            "name": nullable({"type": "string"}),
            "expiresAt": nullable(TIMESTAMP),
            "usesCount": integer(0),
            "maxMachinesOverride": nullable(integer(1)),
            "maxUsesOverride": nullable(integer(1)),
        }
    )
)
MACHINE = _closed(
    document(
        {
            "id": UUID,
            "fingerprint": {"type": "string"},
            "name": nullable({"type": "string"}),
            "heartbeatStatus": enum(HeartbeatStatus),
        }
    )
)
METADATA = _closed(
    {
        "type": "object",
        "properties": {
            "ts": TIMESTAMP,
            "nonce": {"type": "string"},
            "missing": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["ts"],
    }
)
RESULT = one(
    _closed(
        document(
            {
                "valid": {"type": "boolean"},
                "code": enum(ValidationCode),
                "license": nullable(LICENSE),
                "machine": nullable(MACHINE),
                "entitlements": {"type": "array", "items": {"type": "string"}},
                "metadata": METADATA,
            }
        )
    )
)
