"""Licenses (API.md §4): the request bodies and the license document.

The document is closed (`additionalProperties: false`) so that a field such as the key
or its hash cannot reach a response without this schema, and the tests that check every
response against it, saying so. Only the 201 of `POST /licenses` adds `key`.
"""

from __future__ import annotations

from api.schemas.common import AUDIT_FIELDS
from api.schemas.common import CODES
from api.schemas.common import METADATA
from api.schemas.common import TIMESTAMP
from api.schemas.common import UUID
from api.schemas.common import Schema
from api.schemas.common import document
from api.schemas.common import enum
from api.schemas.common import integer
from api.schemas.common import nullable
from api.schemas.common import strict
from api.schemas.common import text
from api.schemas.policies import MAX_COUNT
from api.schemas.policies import POLICY
from ledger.domain.codes import HeartbeatStatus
from ledger.domain.codes import LicenseStatus

# Not an RFC 5322 parser: one `@` with something on each side, no whitespace. Enough to
# catch a name typed into the email field; delivery is the vendor's business.
EMAIL: Schema = text(320, 3, pattern=r"^[^@\s]+@[^@\s]+$")
OVERRIDE: Schema = nullable(integer(1, MAX_COUNT))

_EDITABLE: dict[str, Schema] = {
    "name": nullable(text(255)),
    "expiresAt": {
        **nullable(TIMESTAMP),
        "description": "ISO 8601 with an offset; null: never expires.",
    },
    "maxMachinesOverride": OVERRIDE,
    "maxUsesOverride": OVERRIDE,
    "userEmail": nullable(EMAIL),
    "userName": nullable(text(255)),
    "metadata": METADATA,
}

CREATE = strict(
    {
        "productId": UUID,
        "policyId": {**UUID, "description": "A policy of the same product."},
        **_EDITABLE,
        "entitlements": {**CODES, "description": "Codes of existing entitlements."},
    },
    required=["productId", "policyId"],
)
UPDATE = strict({**_EDITABLE, "policyId": {**UUID, "description": "Of the same product."}})
RENEW = strict({"expiresAt": TIMESTAMP})
USAGE = strict({"increment": integer(1, MAX_COUNT)}, required=["increment"])
CODES_BODY = strict({"codes": {**CODES, "minItems": 1}}, required=["codes"])

STATUS_QUERY: Schema = enum(LicenseStatus)

MACHINE = document(
    {
        "id": UUID,
        "licenseId": UUID,
        "fingerprint": text(256, 1),
        "name": nullable({"type": "string"}),
        "platform": nullable({"type": "string"}),
        "hostname": nullable({"type": "string"}),
        "cores": nullable(integer(0)),
        "ipAddress": nullable({"type": "string"}),
        "heartbeatStatus": enum(HeartbeatStatus),
        "lastHeartbeatAt": nullable(TIMESTAMP),
        "metadata": METADATA,
        **AUDIT_FIELDS,
    }
)

_LICENSE_FIELDS: dict[str, Schema] = {
    "id": UUID,
    "name": nullable({"type": "string"}),
    "status": {**enum(LicenseStatus), "description": "`expired` is derived from time."},
    "productId": UUID,
    "policyId": UUID,
    "userEmail": nullable({"type": "string"}),
    "userName": nullable({"type": "string"}),
    "expiresAt": nullable(TIMESTAMP),
    "maxMachinesOverride": nullable(integer(1)),
    "maxUsesOverride": nullable(integer(1)),
    "usesCount": integer(0),
    "machineCount": integer(0),
    "entitlements": {
        "type": "array",
        "items": {"type": "string"},
        "description": "Effective codes: the policy's, then the license's own.",
    },
    "suspendedAt": nullable(TIMESTAMP),
    "revokedAt": nullable(TIMESTAMP),
    "bannedAt": nullable(TIMESTAMP),
    "metadata": METADATA,
    **AUDIT_FIELDS,
    "policy": POLICY,
    "machines": {
        "type": "array",
        "items": MACHINE,
        "description": "The license's active machines.",
    },
}


def _closed(properties: dict[str, Schema]) -> Schema:
    return {**document(properties), "additionalProperties": False}


LICENSE = _closed(_LICENSE_FIELDS)
ISSUED_LICENSE = _closed(
    {
        **_LICENSE_FIELDS,
        "key": {
            **text(64, 1),
            "description": "`PREFIX-XXXX-XXXX-XXXX-XXXX`; returned here only, never again.",
        },
    }
)
