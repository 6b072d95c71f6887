"""ApiKey: a Bearer credential of one environment, stored only as a keyed hash."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import ClassVar
from uuid import UUID

from eventsourcing.domain import event

from ledger.domain.base import LedgerAggregate
from ledger.domain.checks import Issues
from ledger.domain.checks import check_text
from ledger.domain.checks import unique_codes
from ledger.domain.codes import Scope
from ledger.domain.errors import InvalidTransition
from ledger.domain.timestamps import from_iso_or_none
from ledger.domain.timestamps import require_utc
from ledger.domain.timestamps import to_iso_or_none

KEY_HASH = re.compile(r"[0-9a-f]{64}")


class ApiKey(LedgerAggregate):
    stream_type: ClassVar[str] = "api_key"

    @event("Created")
    def __init__(
        self,
        *,
        name: str,
        scopes: list[str],
        prefix: str,
        key_hash: str,
        expires_at: str | None,
        timestamp: datetime,
    ) -> None:
        self._start({})
        self.name = name
        self.scopes = list(scopes)
        self.prefix = prefix
        self.key_hash = key_hash
        self._expires_at = expires_at
        self.revoked_at: datetime | None = None

    @classmethod
    def create(
        cls,
        *,
        id: UUID,
        name: str,
        scopes: Sequence[str],
        prefix: str,
        key_hash: str,
        expires_at: datetime | None,
        at: datetime,
    ) -> ApiKey:
        """`scopes` empty means full access; `key_hash` is the hex HMAC of the key."""
        at = require_utc(at)
        issues = Issues()
        check_text(issues, "name", name, min_len=1, max_len=255)
        check_text(issues, "prefix", prefix, min_len=1, max_len=32)
        check_text(issues, "keyHash", key_hash, min_len=64, max_len=64, pattern=KEY_HASH)
        for index, scope in enumerate(scopes):
            if scope not in list(Scope):
                issues.add(["scopes", index], f"unknown scope {scope!r}")
        if expires_at is not None and require_utc(expires_at) <= at:
            issues.add(["expiresAt"], "must be in the future")
        issues.raise_if_any()
        return cls._create(
            cls.Created,
            id=id,
            name=name,
            scopes=unique_codes([str(s) for s in scopes]),
            prefix=prefix,
            key_hash=key_hash,
            expires_at=to_iso_or_none(expires_at),
            timestamp=at,
        )

    @property
    def expires_at(self) -> datetime | None:
        return from_iso_or_none(self._expires_at)

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def is_usable(self, now: datetime) -> bool:
        expires_at = self.expires_at
        return not self.revoked and (expires_at is None or require_utc(now) < expires_at)

    def allows(self, scope: Scope) -> bool:
        """An empty scope list grants everything."""
        return not self.scopes or str(scope) in self.scopes

    def revoke(self, *, at: datetime) -> None:
        """Revocation is immediate and terminal."""
        self.check_not_deleted()
        if self.revoked:
            raise InvalidTransition("revoke", "revoked")
        self._revoke(timestamp=require_utc(at))

    @event("Revoked")
    def _revoke(self, timestamp: datetime) -> None:
        self.revoked_at = timestamp
