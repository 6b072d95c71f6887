"""Environment: one tenant (an account's `live` or `test` side) and its secrets.

The domain only ever sees secrets encrypted (base64 text produced outside); public keys
are base64 DER SubjectPublicKeyInfo of Ed25519 keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from typing import ClassVar
from uuid import UUID

from eventsourcing.domain import event

from ledger.domain.base import LedgerAggregate
from ledger.domain.checks import Issues
from ledger.domain.checks import check_choice
from ledger.domain.checks import check_text
from ledger.domain.codes import EnvironmentName
from ledger.domain.errors import Conflict
from ledger.domain.timestamps import from_iso
from ledger.domain.timestamps import require_utc
from ledger.domain.timestamps import to_iso

# base64 of the 12-byte DER prefix every Ed25519 SubjectPublicKeyInfo starts with.
ED25519_SPKI_B64_PREFIX = "MCowBQYDK2VwAyEA"
ED25519_SPKI_B64_LENGTH = 60
ACTIVE = "active"
RETIRED = "retired"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    public_key: str
    encrypted_seed: str
    status: str
    created_at: datetime


def check_signing_key(kid: object, public_key: object, encrypted_seed: object) -> None:
    issues = Issues()
    check_text(issues, "kid", kid, min_len=1, max_len=100)
    check_text(issues, "encryptedSeed", encrypted_seed, min_len=1, max_len=1000)
    if not (
        isinstance(public_key, str)
        and public_key.startswith(ED25519_SPKI_B64_PREFIX)
        and len(public_key) == ED25519_SPKI_B64_LENGTH
    ):
        issues.add(["publicKey"], "must be the base64 SubjectPublicKeyInfo of an Ed25519 key")
    issues.raise_if_any()


def check_secret(encrypted_secret: object) -> None:
    issues = Issues()
    check_text(issues, "encryptedSecret", encrypted_secret, min_len=1, max_len=1000)
    issues.raise_if_any()


class Environment(LedgerAggregate):
    stream_type: ClassVar[str] = "environment"

    @event("Created")
    def __init__(
        self,
        *,
        account_id: str,
        name: str,
        encrypted_response_secret: str,
        signing_key: dict[str, Any],
        timestamp: datetime,
    ) -> None:
        self._start({})
        self.account_id = account_id
        self.name = EnvironmentName(name)
        self.encrypted_response_secret = encrypted_response_secret
        self._signing_keys: list[dict[str, Any]] = [dict(signing_key)]

    @classmethod
    def create(
        cls,
        *,
        id: UUID,
        account_id: UUID,
        name: EnvironmentName,
        encrypted_response_secret: str,
        kid: str,
        public_key: str,
        encrypted_seed: str,
        at: datetime,
    ) -> Environment:
        issues = Issues()
        check_choice(issues, "name", name, list(EnvironmentName))
        issues.raise_if_any()
        check_secret(encrypted_response_secret)
        check_signing_key(kid, public_key, encrypted_seed)
        at = require_utc(at)
        return cls._create(
            cls.Created,
            id=id,
            account_id=str(account_id),
            name=str(name),
            encrypted_response_secret=encrypted_response_secret,
            signing_key=_key_record(kid, public_key, encrypted_seed, at),
            timestamp=at,
        )

    @property
    def signing_keys(self) -> list[SigningKey]:
        """All keys, oldest first; retired ones stay listed so issued files keep verifying."""
        return [
            SigningKey(
                kid=k["kid"],
                public_key=k["public_key"],
                encrypted_seed=k["encrypted_seed"],
                status=k["status"],
                created_at=from_iso(k["created_at"]),
            )
            for k in self._signing_keys
        ]

    @property
    def active_signing_key(self) -> SigningKey:
        return next(k for k in self.signing_keys if k.status == ACTIVE)

    def signing_key(self, kid: str) -> SigningKey | None:
        return next((k for k in self.signing_keys if k.kid == kid), None)

    def rotate_signing_key(
        self, *, kid: str, public_key: str, encrypted_seed: str, at: datetime
    ) -> None:
        """New files are signed with the new key; the previous active key is retired."""
        self.check_not_deleted()
        check_signing_key(kid, public_key, encrypted_seed)
        if self.signing_key(kid) is not None:
            msg = f"signing key {kid} already exists"
            raise Conflict(msg, {"kid": kid})
        at = require_utc(at)
        self._rotate_signing_key(
            signing_key=_key_record(kid, public_key, encrypted_seed, at),
            retired_kid=self.active_signing_key.kid,
            timestamp=at,
        )

    @event("SigningKeyRotated")
    def _rotate_signing_key(
        self, signing_key: dict[str, Any], retired_kid: str, timestamp: datetime
    ) -> None:
        for key in self._signing_keys:
            if key["kid"] == retired_kid:
                key["status"] = RETIRED
        self._signing_keys.append(dict(signing_key))

    def rotate_response_secret(self, *, encrypted_secret: str, at: datetime) -> None:
        self.check_not_deleted()
        check_secret(encrypted_secret)
        self._rotate_response_secret(encrypted_secret=encrypted_secret, timestamp=require_utc(at))

    @event("ResponseSecretRotated")
    def _rotate_response_secret(self, encrypted_secret: str, timestamp: datetime) -> None:
        self.encrypted_response_secret = encrypted_secret


def _key_record(kid: str, public_key: str, encrypted_seed: str, at: datetime) -> dict[str, Any]:
    return {
        "kid": kid,
        "public_key": public_key,
        "encrypted_seed": encrypted_seed,
        "status": ACTIVE,
        "created_at": to_iso(at),
    }
