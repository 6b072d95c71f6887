"""Policies (API.md §4): the tunable fields, their templates and attached entitlements."""

from __future__ import annotations

from api.schemas.common import AUDIT_FIELDS
from api.schemas.common import CODES
from api.schemas.common import METADATA
from api.schemas.common import UUID
from api.schemas.common import Schema
from api.schemas.common import document
from api.schemas.common import enum
from api.schemas.common import integer
from api.schemas.common import nullable
from api.schemas.common import strict
from api.schemas.common import text
from ledger.domain.codes import ExpirationStrategy
from ledger.domain.codes import FingerprintUniqueness
from ledger.domain.codes import HeartbeatCullStrategy
from ledger.domain.codes import PolicyTemplate

# Upper bounds keep dates computable (a license expiry of now + durationDays must stay a
# real date) and counts within a signed 32-bit integer; nothing sensible lies beyond them.
MAX_COUNT = 2**31 - 1
MAX_DAYS = 36_500
MAX_HEARTBEAT_MINUTES = 366 * 24 * 60
BOOLEAN: Schema = {"type": "boolean"}

# camelCase wire name -> schema; the snake_case `PolicySettings` keys are these names
# converted (ledger/domain/templates.py `camel`).
SETTINGS: dict[str, Schema] = {
    "maxMachines": nullable(integer(1, MAX_COUNT)),
    "maxUses": nullable(integer(1, MAX_COUNT)),
    "floating": BOOLEAN,
    "durationDays": nullable(integer(1, MAX_DAYS)),
    "expirationStrategy": enum(ExpirationStrategy),
    "requireHeartbeat": BOOLEAN,
    "heartbeatIntervalMinutes": integer(1, MAX_HEARTBEAT_MINUTES),
    "heartbeatCullStrategy": enum(HeartbeatCullStrategy),
    "requireFingerprint": BOOLEAN,
    "fingerprintUniqueness": enum(FingerprintUniqueness),
    "offlineAllowed": BOOLEAN,
    "offlineMaxDays": integer(1, MAX_DAYS),
    "allowMachineTransfer": BOOLEAN,
    "isTrial": BOOLEAN,
    "trialDurationDays": nullable(integer(1, MAX_DAYS)),
    "overridable": BOOLEAN,
}

_TEMPLATE: Schema = {
    **nullable(enum(PolicyTemplate)),
    "description": "Fills the defaults of the fields below; fields given alongside win.",
}
_EDITABLE: dict[str, Schema] = {
    "name": text(255, 1),
    "template": _TEMPLATE,
    **SETTINGS,
    "metadata": METADATA,
}

CREATE = strict({"productId": UUID, **_EDITABLE}, required=["productId", "name"])
# The product of a policy is fixed: a PATCH naming `productId` is an unknown field.
UPDATE = strict(_EDITABLE)
CODES_BODY = strict({"codes": {**CODES, "minItems": 1}}, required=["codes"])

POLICY = document(
    {
        "id": UUID,
        "productId": UUID,
        "name": text(255, 1),
        "template": nullable(enum(PolicyTemplate)),
        **SETTINGS,
        "entitlements": {"type": "array", "items": {"type": "string"}},
        "metadata": METADATA,
        **AUDIT_FIELDS,
    }
)
