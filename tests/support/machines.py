"""Licenses for the machine tests, made with the ledger's commands (product, policy, license)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from uuid import UUID
from uuid import uuid4

from ledger.application import LedgerApplication
from ledger.commands import catalogue
from ledger.commands import licenses
from ledger.commands.base import Actor
from ledger.commands.base import CommandContext
from ledger.domain.base import UNSET
from ledger.domain.base import Unset
from ledger.domain.templates import PolicySettings

OPERATOR = Actor("operator")


def context(tenant_id: UUID | str, at: datetime | None = None) -> CommandContext:
    return CommandContext(UUID(str(tenant_id)), OPERATOR, at or datetime.now(UTC))


@dataclass(frozen=True)
class IssuedLicense:
    tenant_id: UUID
    product_id: UUID
    policy_id: UUID
    license_id: UUID
    key: str

    @property
    def auth(self) -> str:
        """The `Authorization` header value of a client app holding this key."""
        return f"License {self.key}"


def create_policy(
    ledger: LedgerApplication,
    tenant_id: UUID | str,
    settings: PolicySettings | None = None,
    *,
    at: datetime | None = None,
) -> tuple[UUID, UUID]:
    """A new product and a policy on it: (product id, policy id)."""
    ctx = context(tenant_id, at)
    product = catalogue.create_product(
        ledger, ctx, product_id=uuid4(), name="App", code="app-" + secrets.token_hex(5)
    )
    policy = catalogue.create_policy(
        ledger, ctx, policy_id=uuid4(), product_id=product.id, name="Policy", settings=settings
    )
    return product.id, policy.id


def issue_license(
    ledger: LedgerApplication,
    pepper: bytes,
    tenant_id: UUID | str,
    *,
    settings: PolicySettings | None = None,
    policy: tuple[UUID, UUID] | None = None,
    expires_at: datetime | Unset | None = UNSET,
    max_machines_override: int | None = None,
    at: datetime | None = None,
) -> IssuedLicense:
    """A license on `policy` (product id, policy id), or on a new one with `settings`."""
    product_id, policy_id = policy or create_policy(ledger, tenant_id, settings, at=at)
    issued = licenses.issue_license(
        ledger,
        context(tenant_id, at),
        license_id=uuid4(),
        product_id=product_id,
        policy_id=policy_id,
        pepper=pepper,
        expires_at=expires_at,
        max_machines_override=max_machines_override,
    )
    return IssuedLicense(UUID(str(tenant_id)), product_id, policy_id, issued.license.id, issued.key)


def event_types(ledger: LedgerApplication, tenant_id: UUID | str, stream_id: UUID) -> list[str]:
    """The stable names of a stream's events, in order."""
    with ledger.reading(UUID(str(tenant_id))) as curs:
        rows = curs.execute(
            "SELECT event_type FROM events WHERE stream_id = %s ORDER BY version", (stream_id,)
        ).fetchall()
    return [row["event_type"] for row in rows]


class FakeClock:
    """A clock the test moves by hand (the server and the timers take it injected)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> datetime:
        self.now += delta
        return self.now
