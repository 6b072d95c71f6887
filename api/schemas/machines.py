"""Machines (API.md §4): activation body, PATCH body, the machine document."""

from __future__ import annotations

from api.schemas.common import AUDIT_FIELDS
from api.schemas.common import METADATA
from api.schemas.common import UUID
from api.schemas.common import Schema
from api.schemas.common import document
from api.schemas.common import enum
from api.schemas.common import integer
from api.schemas.common import nullable
from api.schemas.common import strict
from api.schemas.common import text
from ledger.domain.codes import HeartbeatStatus
from ledger.domain.codes import Platform

_NAME = nullable(text(255))
_PLATFORM = nullable(enum(Platform))
_HOSTNAME = nullable(text(255))
_CORES = nullable(integer(1, 65536))

# The official SDK's `activate` sends {fingerprint, name?, platform?} with `License`
# auth; a vendor backend with a Bearer key adds `licenseId`.
ACTIVATE = strict(
    {
        "fingerprint": text(256, 8),
        "name": _NAME,
        "platform": _PLATFORM,
        "hostname": _HOSTNAME,
        "cores": _CORES,
        "metadata": METADATA,
        "licenseId": {
            **UUID,
            "description": "Required with an API key; with a License key, its own license.",
        },
    },
    required=["fingerprint"],
)
UPDATE = strict({"name": _NAME, "metadata": METADATA})

MACHINE: Schema = document(
    {
        "id": UUID,
        "licenseId": UUID,
        "fingerprint": {"type": "string"},
        "name": _NAME,
        "platform": _PLATFORM,
        "hostname": _HOSTNAME,
        "cores": _CORES,
        "ipAddress": nullable({"type": "string"}),
        "heartbeatStatus": enum(HeartbeatStatus),
        "lastHeartbeatAt": nullable({"type": "string", "format": "date-time"}),
        "metadata": METADATA,
        **AUDIT_FIELDS,
    }
)
