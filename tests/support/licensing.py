"""Licenses and machines for the validation tests, made with the ledger's commands
(no HTTP involved). Owned by the validation tests; see tests/support/machines.py for the
machine lifecycle helpers."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from typing import Any
from uuid import UUID
from uuid import uuid4

from ledger.application import LedgerApplication
from ledger.commands import catalogue
from ledger.commands.base import Actor
from ledger.commands.base import CommandContext
from ledger.commands.base import change
from ledger.commands.licenses import issue_license
from ledger.domain.license import License
from ledger.domain.templates import PolicySettings


def context(tenant_id: UUID | str, at: datetime | None = None) -> CommandContext:
    return CommandContext(UUID(str(tenant_id)), Actor("operator"), at or datetime.now(UTC))


@dataclass(frozen=True)
class IssuedKey:
    tenant_id: UUID
    license_id: UUID
    key: str
    policy_id: UUID


def issue(
    ledger: LedgerApplication,
    pepper: bytes,
    tenant_id: UUID | str,
    *,
    policy: PolicySettings | None = None,
    policy_entitlements: Sequence[str] = (),
    **license_fields: Any,
) -> IssuedKey:
    """A new product, policy (`policy` settings over the defaults) and license."""
    ctx = context(tenant_id)
    product = catalogue.create_product(
        ledger, ctx, product_id=uuid4(), name="App", code="app-" + secrets.token_hex(4)
    )
    created = catalogue.create_policy(
        ledger, ctx, policy_id=uuid4(), product_id=product.id, name="Plan", settings=policy
    )
    if policy_entitlements:
        catalogue.attach_policy_entitlements(ledger, ctx, created.id, policy_entitlements)
    issued = issue_license(
        ledger,
        ctx,
        license_id=uuid4(),
        product_id=product.id,
        policy_id=created.id,
        pepper=pepper,
        **license_fields,
    )
    return IssuedKey(ctx.tenant_id, issued.license.id, issued.key, created.id)


def activate(
    ledger: LedgerApplication,
    issued: IssuedKey,
    fingerprint: str,
    *,
    max_machines: int | None = None,
    at: datetime | None = None,
) -> UUID:
    """Activate a machine on the license (the domain command; no seat policy applied)."""
    machine_id = uuid4()
    change(
        ledger,
        context(issued.tenant_id, at),
        License,
        issued.license_id,
        lambda lic: lic.activate_machine(
            machine_id=machine_id,
            fingerprint=fingerprint,
            name="Workstation",
            max_machines=max_machines,
            at=at or datetime.now(UTC),
        ),
    )
    return machine_id
