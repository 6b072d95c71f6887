"""The operator's accounts (API.md §3): the document `licentric account create` prints."""

from __future__ import annotations

from api.schemas.common import UUID
from api.schemas.common import Schema
from api.schemas.common import document
from api.schemas.common import strict
from api.schemas.common import text
from ledger.domain.codes import EnvironmentName

CREATE = strict({"name": text(255, 1)}, required=["name"])

_ENVIRONMENT: Schema = {
    **document(
        {
            "apiKey": {"type": "string", "pattern": "^lk_(live|test)_[0-9A-Za-z]{32,}$"},
            "signingKey": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "publicKey": {"type": "string", "description": "base64 DER SubjectPublicKeyInfo"},
        }
    ),
    "additionalProperties": False,
}

OPENED_ACCOUNT: Schema = {
    **document(
        {
            "accountId": UUID,
            "environments": {
                **document({str(name): _ENVIRONMENT for name in EnvironmentName}),
                "additionalProperties": False,
            },
        }
    ),
    "additionalProperties": False,
}
