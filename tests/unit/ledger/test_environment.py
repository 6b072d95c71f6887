"""Account, Environment (tenant secrets and signing keys) and ApiKey."""

from __future__ import annotations

import base64
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from uuid import uuid4

import pytest

from ledger.domain.account import Account
from ledger.domain.api_key import ApiKey
from ledger.domain.codes import EnvironmentName
from ledger.domain.codes import Scope
from ledger.domain.environment import Environment
from ledger.domain.errors import Conflict
from ledger.domain.errors import InvalidTransition
from ledger.domain.errors import ValidationFailed

T0 = datetime(2026, 1, 15, tzinfo=UTC)
SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")


def public_key(n: int) -> str:
    return base64.b64encode(SPKI_PREFIX + bytes([n]) * 32).decode()


def new_environment() -> Environment:
    return Environment.create(
        id=uuid4(), account_id=uuid4(), name=EnvironmentName.LIVE,
        encrypted_response_secret="c2VjcmV0", kid="k1", public_key=public_key(1),
        encrypted_seed="c2VlZA==", at=T0,
    )  # fmt: skip


def test_account_is_named() -> None:
    account = Account.create(id=uuid4(), name="Acme", at=T0)
    account.rename(name="Acme Inc", at=T0)
    assert account.name == "Acme Inc"
    with pytest.raises(ValidationFailed):
        Account.create(id=uuid4(), name="", at=T0)


def test_rotating_the_signing_key_retires_the_previous_one() -> None:
    env = new_environment()
    env.rotate_signing_key(
        kid="k2", public_key=public_key(2), encrypted_seed="c2VlZDI=", at=T0 + timedelta(days=1)
    )
    assert [(k.kid, k.status) for k in env.signing_keys] == [("k1", "retired"), ("k2", "active")]
    assert env.active_signing_key.created_at == T0 + timedelta(days=1)
    with pytest.raises(Conflict):
        env.rotate_signing_key(kid="k2", public_key=public_key(3), encrypted_seed="x", at=T0)


def test_a_public_key_must_be_ed25519_spki() -> None:
    with pytest.raises(ValidationFailed):
        new_environment().rotate_signing_key(
            kid="k2", public_key="bm90IGEga2V5", encrypted_seed="x", at=T0
        )


def test_rotating_the_response_secret_stores_the_encrypted_value() -> None:
    env = new_environment()
    env.rotate_response_secret(encrypted_secret="bmV3", at=T0)
    assert env.encrypted_response_secret == "bmV3"
    assert [type(e).__name__ for e in env.collect_events()] == ["Created", "ResponseSecretRotated"]


def test_api_key_scopes_are_checked_and_revocation_is_terminal() -> None:
    with pytest.raises(ValidationFailed) as caught:
        ApiKey.create(
            id=uuid4(), name="ci", scopes=["licenses:read", "root"], prefix="lk_live_abc",
            key_hash="0" * 64, expires_at=None, at=T0,
        )  # fmt: skip
    assert caught.value.details["issues"][0]["path"] == ["scopes", 1]
    key = ApiKey.create(
        id=uuid4(), name="ci", scopes=["licenses:read"], prefix="lk_live_abc",
        key_hash="0" * 64, expires_at=T0 + timedelta(days=1), at=T0,
    )  # fmt: skip
    assert key.allows(Scope.LICENSES_READ)
    assert not key.allows(Scope.LICENSES_WRITE)
    assert key.is_usable(T0)
    assert not key.is_usable(T0 + timedelta(days=1))
    key.revoke(at=T0)
    assert not key.is_usable(T0)
    with pytest.raises(InvalidTransition):
        key.revoke(at=T0)
