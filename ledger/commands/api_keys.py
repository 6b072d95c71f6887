"""Commands on API keys: create (the key is shown once) and revoke."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from ledger.accounts import API_KEY_DISPLAY_PREFIX
from ledger.application import LedgerApplication
from ledger.commands.base import CommandContext
from ledger.commands.base import change
from ledger.commands.base import save
from ledger.crypto import keyed_hash
from ledger.crypto import new_api_key
from ledger.domain.api_key import ApiKey


@dataclass(frozen=True)
class IssuedApiKey:
    api_key: ApiKey
    key: str  # shown once; stored only as a keyed hash


def create_api_key(
    app: LedgerApplication,
    ctx: CommandContext,
    *,
    api_key_id: UUID,
    environment: str,
    name: str,
    scopes: Sequence[str],
    expires_at: datetime | None,
    pepper: bytes,
) -> IssuedApiKey:
    key = new_api_key(environment)
    api_key = ApiKey.create(
        id=api_key_id,
        name=name,
        scopes=scopes,
        prefix=key[:API_KEY_DISPLAY_PREFIX],
        key_hash=keyed_hash(pepper, key),
        expires_at=expires_at,
        at=ctx.at,
    )
    save(app, ctx, api_key)
    return IssuedApiKey(api_key, key)


def revoke_api_key(app: LedgerApplication, ctx: CommandContext, api_key_id: UUID) -> None:
    """Immediate: the key's lookup row is removed in the same transaction."""
    change(app, ctx, ApiKey, api_key_id, lambda k: k.revoke(at=ctx.at))
