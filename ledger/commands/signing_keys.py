"""Commands on an environment's keys: rotate the Ed25519 key or the response secret.

Two separate rotations because their blast radius differs: a new Ed25519 key only
changes which key signs *new* offline files (the retired one stays published, so issued
files keep verifying); a new response-signing secret breaks every deployed client that
verifies validation responses until it is given the new secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ledger.accounts import response_secret_context
from ledger.accounts import signing_seed_context
from ledger.application import LedgerApplication
from ledger.commands.base import CommandContext
from ledger.commands.base import change
from ledger.crypto import NewSigningKey
from ledger.crypto import encrypt
from ledger.crypto import new_response_secret
from ledger.domain.environment import Environment
from ledger.domain.environment import SigningKey


@dataclass(frozen=True)
class RotatedSigningKey:
    active: SigningKey
    retired: SigningKey


def rotate_signing_key(
    app: LedgerApplication, ctx: CommandContext, *, master_key: bytes
) -> RotatedSigningKey:
    """New files are signed with a fresh key; the previous active key is retired."""
    new = NewSigningKey.generate()
    sealed = encrypt(master_key, new.seed, context=signing_seed_context(ctx.tenant_id, new.kid))

    def decide(environment: Environment) -> SigningKey:
        retired = environment.active_signing_key
        environment.rotate_signing_key(
            kid=new.kid, public_key=new.public_key, encrypted_seed=sealed, at=ctx.at
        )
        return retired

    environment, retired = change(app, ctx, Environment, ctx.tenant_id, decide)
    retired_now = environment.signing_key(retired.kid)
    assert retired_now is not None
    return RotatedSigningKey(environment.active_signing_key, retired_now)


@dataclass(frozen=True)
class RotatedResponseSecret:
    secret: str  # 64 hex; shown once
    rotated_at: datetime


def rotate_response_secret(
    app: LedgerApplication, ctx: CommandContext, *, master_key: bytes
) -> RotatedResponseSecret:
    secret = new_response_secret()
    sealed = encrypt(master_key, secret.encode(), context=response_secret_context(ctx.tenant_id))
    change(
        app,
        ctx,
        Environment,
        ctx.tenant_id,
        lambda environment: environment.rotate_response_secret(encrypted_secret=sealed, at=ctx.at),
    )
    return RotatedResponseSecret(secret, ctx.at)
