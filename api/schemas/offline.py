"""Offline license files and signing keys (API.md §3, §7)."""

from __future__ import annotations

from api.schemas.common import TIMESTAMP
from api.schemas.common import UUID
from api.schemas.common import Schema
from api.schemas.common import document
from api.schemas.common import enum
from api.schemas.common import integer
from api.schemas.common import nullable
from api.schemas.common import strict
from api.schemas.common import text
from ledger.domain.codes import LicenseStatus

ROTATE_ED25519 = "ed25519"
ROTATE_RESPONSE = "response"

_CERTIFICATE: Schema = {
    "type": "string",
    "description": "-----BEGIN LICENSE FILE-----, b64(header).b64(payload).b64(signature), "
    "-----END LICENSE FILE-----",
}

CHECKOUT = strict(
    {
        "fingerprint": {
            **nullable(text(256, 1)),
            "description": "An active machine of the license; required when the policy "
            "requires fingerprints.",
        },
        # Only the type here: a value out of range is 400 CHECKOUT_TTL_INVALID, not a
        # generic VALIDATION_ERROR (API.md §7).
        "ttl": {
            "type": "integer",
            "description": "Seconds, 3600-7776000 and at most offlineMaxDays x 86400; "
            "default 1209600 (capped at offlineMaxDays).",
        },
        "encrypt": {
            "type": "boolean",
            "default": False,
            "description": "Encrypt the payload (AES-256-GCM, key derived from the "
            "license key; see docs/offline.md).",
        },
        "licenseKey": {
            **text(512, 1),
            "description": "Only for encrypt: true on a license issued without a stored "
            "offline key; checked against the license.",
        },
    }
)

# The license document of `GET /licenses/{id}` (its full schema belongs to /licenses).
_LICENSE: Schema = {
    "type": "object",
    "properties": {"id": UUID, "status": enum(LicenseStatus)},
    "required": ["id", "status"],
}

CHECKED_OUT = document(
    {
        "certificate": _CERTIFICATE,
        "license": _LICENSE,
        "fingerprint": nullable({"type": "string"}),
        "ttl": integer(3600),
        "expiresAt": {**TIMESTAMP, "description": "The file's expiry (its header's)."},
    }
)

LICENSE_FILE: Schema = {**_CERTIFICATE, "contentMediaType": "application/x-licentric-license"}

CHECKOUT_ITEM = document(
    {
        "id": UUID,
        "licenseId": UUID,
        "fingerprint": nullable({"type": "string"}),
        "machineId": nullable(UUID),
        "ttl": integer(3600),
        "encrypted": {"type": "boolean"},
        "issuedAt": TIMESTAMP,
        "expiresAt": {**TIMESTAMP, "description": "End of the checkout (issuedAt + ttl)."},
        "kid": {"type": "string"},
        "certificate": nullable(_CERTIFICATE),
        "fileIssuedAt": nullable(TIMESTAMP),
        "fileExpiresAt": nullable(TIMESTAMP),
    }
)

SIGNING_KEY = document(
    {
        "kid": {"type": "string"},
        "publicKey": {
            "type": "string",
            "description": "Base64 DER SubjectPublicKeyInfo of the Ed25519 key.",
        },
        "status": enum(["active", "retired"]),
        "createdAt": TIMESTAMP,
    }
)

ROTATE = strict(
    {
        "kind": {
            **enum([ROTATE_ED25519, ROTATE_RESPONSE]),
            "default": ROTATE_ED25519,
            "description": "ed25519: a new key signs new offline files (the old one is "
            "retired, still listed). response: a new response-signing secret (clients "
            "verifying validation responses need it at once).",
        }
    }
)

ROTATED_ED25519 = document(
    {
        "kind": enum([ROTATE_ED25519]),
        "kid": {"type": "string"},
        "publicKey": {"type": "string"},
        "status": enum(["active"]),
        "createdAt": TIMESTAMP,
        "retired": SIGNING_KEY,
    }
)
ROTATED_RESPONSE = document(
    {
        "kind": enum([ROTATE_RESPONSE]),
        "signingKey": {
            "type": "string",
            "pattern": "^[0-9a-f]{64}$",
            "description": "The new response-signing secret; shown only here.",
        },
        "rotatedAt": TIMESTAMP,
    }
)
ROTATED: Schema = {"oneOf": [ROTATED_ED25519, ROTATED_RESPONSE]}
