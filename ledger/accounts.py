"""Opening an account: one account stream and two tenants (live, test).

Each environment gets a response-signing secret (64 hex; the SDK verifies validation
responses with it), an Ed25519 signing key for offline files, and one full-access API
key. Plaintext secrets leave this function once, in the returned document (API.md §3),
and are stored only encrypted (secrets, seeds) or as keyed hashes (API keys).

The account stream itself lives in the live tenant's log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID
from uuid import uuid4

from ledger.application import LedgerApplication
from ledger.crypto import NewSigningKey
from ledger.crypto import encrypt
from ledger.crypto import keyed_hash
from ledger.crypto import new_api_key
from ledger.crypto import new_response_secret
from ledger.domain.account import Account
from ledger.domain.api_key import ApiKey
from ledger.domain.codes import EnvironmentName
from ledger.domain.environment import Environment

DEFAULT_KEY_NAME = "Default full-access key"
# Shown in key lists so a human can tell keys apart without the secret.
API_KEY_DISPLAY_PREFIX = 12


def response_secret_context(tenant_id: UUID) -> str:
    return f"{tenant_id}:response-secret"


def signing_seed_context(tenant_id: UUID, kid: str) -> str:
    return f"{tenant_id}:signing-seed:{kid}"


@dataclass(frozen=True)
class OpenedEnvironment:
    tenant_id: UUID
    api_key: str
    signing_key: str
    public_key: str


@dataclass(frozen=True)
class OpenedAccount:
    account_id: UUID
    environments: dict[EnvironmentName, OpenedEnvironment]

    def document(self) -> dict[str, Any]:
        """The API.md §3 document, printed or returned exactly once."""
        return {
            "accountId": str(self.account_id),
            "environments": {
                str(name): {
                    "apiKey": env.api_key,
                    "signingKey": env.signing_key,
                    "publicKey": env.public_key,
                }
                for name, env in self.environments.items()
            },
        }


def open_account(
    app: LedgerApplication,
    *,
    name: str,
    master_key: bytes,
    pepper: bytes,
    at: datetime,
    new_id: Callable[[], UUID] = uuid4,
) -> OpenedAccount:
    account = Account.create(id=new_id(), name=name, at=at)
    opened: dict[EnvironmentName, OpenedEnvironment] = {}
    # Test first: if the live save failed, no usable account would have been shown.
    for env_name in (EnvironmentName.TEST, EnvironmentName.LIVE):
        tenant_id = new_id()
        secret = new_response_secret()
        signing = NewSigningKey.generate()
        environment = Environment.create(
            id=tenant_id,
            account_id=account.id,
            name=env_name,
            encrypted_response_secret=encrypt(
                master_key, secret.encode(), context=response_secret_context(tenant_id)
            ),
            kid=signing.kid,
            public_key=signing.public_key,
            encrypted_seed=encrypt(
                master_key, signing.seed, context=signing_seed_context(tenant_id, signing.kid)
            ),
            at=at,
        )
        key = new_api_key(str(env_name))
        api_key = ApiKey.create(
            id=new_id(),
            name=DEFAULT_KEY_NAME,
            scopes=[],
            prefix=key[:API_KEY_DISPLAY_PREFIX],
            key_hash=keyed_hash(pepper, key),
            expires_at=None,
            at=at,
        )
        streams: list[Any] = [environment, api_key]
        if env_name is EnvironmentName.LIVE:
            streams.insert(0, account)
        app.save_in(tenant_id, *streams, metadata={"actor": {"type": "operator", "id": None}})
        opened[env_name] = OpenedEnvironment(tenant_id, key, secret, signing.public_key)
    return OpenedAccount(
        account_id=account.id,
        environments={n: opened[n] for n in (EnvironmentName.LIVE, EnvironmentName.TEST)},
    )
