"""A license ready to go offline (product, policy, license, one machine), made with the
ledger commands, for the offline tests (integration and end-to-end)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from typing import Any
from uuid import UUID
from uuid import uuid4

from ledger.application import LedgerApplication
from ledger.commands import catalogue
from ledger.commands import licenses
from ledger.commands.base import Actor
from ledger.commands.base import CommandContext
from ledger.commands.base import change
from ledger.domain.base import UNSET
from ledger.domain.license import License
from ledger.domain.templates import PolicySettings


@dataclass(frozen=True)
class OfflineLicense:
    license_id: UUID
    policy_id: UUID
    key: str
    fingerprint: str
    machine_id: UUID


def context(tenant_id: UUID | str) -> CommandContext:
    return CommandContext(UUID(str(tenant_id)), Actor("operator"), datetime.now(UTC))


def offline_license(
    ledger: LedgerApplication,
    tenant_id: UUID | str,
    *,
    pepper: bytes,
    master_key: bytes | None,
    settings: PolicySettings | None = None,
    expires_at: Any = UNSET,
) -> OfflineLicense:
    """`master_key` None: the license is issued without a sealed offline key."""
    ctx = context(tenant_id)
    product = catalogue.create_product(
        ledger, ctx, product_id=uuid4(), name="Offline", code="off-" + secrets.token_hex(4)
    )
    policy = catalogue.create_policy(
        ledger, ctx, policy_id=uuid4(), product_id=product.id, name="Desktop", settings=settings
    )
    issued = licenses.issue_license(
        ledger, ctx, license_id=uuid4(), product_id=product.id, policy_id=policy.id,
        pepper=pepper, master_key=master_key, expires_at=expires_at,
    )  # fmt: skip
    fingerprint = "fp-" + secrets.token_hex(8)
    machine_id = uuid4()
    change(
        ledger, ctx, License, issued.license.id,
        lambda lic: lic.activate_machine(
            machine_id=machine_id, fingerprint=fingerprint, max_machines=None,
            expired_blocks=False, at=ctx.at,
        ),
    )  # fmt: skip
    return OfflineLicense(issued.license.id, policy.id, issued.key, fingerprint, machine_id)
