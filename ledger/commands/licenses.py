"""Commands on licenses: issue, change, the lifecycle actions, usage and entitlements.

Every command that depends on the policy (default expiry, renewal duration, usage cap)
loads it in the same attempt, so a retry after a stream conflict sees both fresh.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from typing import TypeVar
from uuid import UUID

from ledger.application import LedgerApplication
from ledger.commands.base import CommandContext
from ledger.commands.base import load
from ledger.commands.base import load_reference
from ledger.commands.base import save
from ledger.crypto import keyed_hash
from ledger.crypto import new_license_key
from ledger.domain.base import UNSET
from ledger.domain.base import Unset
from ledger.domain.errors import BusinessRuleViolation
from ledger.domain.license import License
from ledger.domain.policy import Policy
from ledger.domain.product import Product
from ledger.offline.encryption import derive_file_key
from ledger.offline.keys import seal_file_key

T = TypeVar("T")


@dataclass(frozen=True)
class IssuedLicense:
    license: License
    key: str  # shown once, in the 201 response; stored only as a keyed hash


def _same_product(policy: Policy, product_id: str | UUID) -> None:
    if policy.product_id != str(product_id):
        msg = "policyId belongs to another product"
        raise BusinessRuleViolation(msg, "POLICY_PRODUCT_MISMATCH", {"path": ["policyId"]})


def issue_license(
    app: LedgerApplication,
    ctx: CommandContext,
    *,
    license_id: UUID,
    product_id: UUID,
    policy_id: UUID,
    pepper: bytes,
    expires_at: datetime | Unset | None = UNSET,
    name: str | None = None,
    max_machines_override: int | None = None,
    max_uses_override: int | None = None,
    user_email: str | None = None,
    user_name: str | None = None,
    entitlements: Sequence[str] = (),
    metadata: Mapping[str, Any] | None = None,
    new_key: Callable[[str], str] = new_license_key,
    master_key: bytes | None = None,
) -> IssuedLicense:
    """`expires_at` not given: the policy's `durationDays` from now (None: never).

    Entitlement codes must exist: the caller checks them against the read model.
    """

    def attempt() -> IssuedLicense:
        product = load_reference(app, Product, product_id, "productId")
        policy = load_reference(app, Policy, policy_id, "policyId")
        _same_product(policy, product.id)
        key = new_key(product.key_prefix)
        license_ = License.create(
            id=license_id,
            product_id=product.id,
            policy_id=policy.id,
            key_hash=keyed_hash(pepper, key),
            name=name,
            expires_at=policy.default_expiry(ctx.at) if expires_at is UNSET else expires_at,
            max_machines_override=max_machines_override,
            max_uses_override=max_uses_override,
            user_email=user_email,
            user_name=user_name,
            entitlements=entitlements,
            metadata=metadata,
            at=ctx.at,
        )
        if master_key is not None:
            # Offline files with `encrypt: true` need a key derived from the license key,
            # which is never stored: keep that derived key, sealed (ledger.offline).
            file_key = derive_file_key(key, license_id)
            sealed = seal_file_key(master_key, ctx.tenant_id, license_id, file_key)
            license_.seal_file_key(sealed_key=sealed, at=ctx.at)
        save(app, ctx, license_)
        return IssuedLicense(license_, key)

    return app.execute(ctx.tenant_id, attempt)


def _on_license(
    app: LedgerApplication,
    ctx: CommandContext,
    license_id: UUID,
    decide: Callable[[License, Policy], T],
) -> tuple[License, T]:
    def attempt() -> tuple[License, T]:
        license_ = load(app, License, license_id)
        # A license keeps its policy's stream even if the policy was deleted later.
        policy: object = app.repository.get(UUID(license_.policy_id))
        assert isinstance(policy, Policy)
        outcome = decide(license_, policy)
        save(app, ctx, license_)
        return license_, outcome

    return app.execute(ctx.tenant_id, attempt, stream=license_id)


def update_license(
    app: LedgerApplication, ctx: CommandContext, license_id: UUID, changes: Mapping[str, Any]
) -> License:
    """PATCH; a new `policy_id` must be a live policy of the same product."""

    def decide(license_: License, _: Policy) -> bool:
        policy_id = changes.get("policy_id", UNSET)
        if isinstance(policy_id, UUID) and str(policy_id) != license_.policy_id:
            _same_product(load_reference(app, Policy, policy_id, "policyId"), license_.product_id)
        return license_.update(**changes, at=ctx.at)

    return _on_license(app, ctx, license_id, decide)[0]


def delete_license(app: LedgerApplication, ctx: CommandContext, license_id: UUID) -> None:
    _on_license(app, ctx, license_id, lambda lic, _: lic.delete(at=ctx.at))


def suspend_license(app: LedgerApplication, ctx: CommandContext, license_id: UUID) -> License:
    return _on_license(app, ctx, license_id, lambda lic, _: lic.suspend(at=ctx.at))[0]


def reinstate_license(app: LedgerApplication, ctx: CommandContext, license_id: UUID) -> License:
    return _on_license(app, ctx, license_id, lambda lic, _: lic.reinstate(at=ctx.at))[0]


def revoke_license(app: LedgerApplication, ctx: CommandContext, license_id: UUID) -> License:
    return _on_license(app, ctx, license_id, lambda lic, _: lic.revoke(at=ctx.at))[0]


def ban_license(app: LedgerApplication, ctx: CommandContext, license_id: UUID) -> License:
    return _on_license(app, ctx, license_id, lambda lic, _: lic.ban(at=ctx.at))[0]


def renew_license(
    app: LedgerApplication,
    ctx: CommandContext,
    license_id: UUID,
    expires_at: datetime | None = None,
) -> License:
    """Explicit `expires_at`, else the policy's `durationDays` from max(now, expiresAt)."""
    return _on_license(
        app,
        ctx,
        license_id,
        lambda lic, pol: lic.renew(
            expires_at=expires_at, duration_days=pol.duration_days, at=ctx.at
        ),
    )[0]


def increment_usage(
    app: LedgerApplication, ctx: CommandContext, license_id: UUID, increment: int
) -> License:
    """Exact under concurrency: the cap is checked against the stream's latest version."""
    return _on_license(
        app,
        ctx,
        license_id,
        lambda lic, pol: lic.increment_usage(
            increment=increment,
            max_uses=pol.max_uses_for(lic.max_uses_override),
            at=ctx.at,
        ),
    )[0]


def reset_usage(app: LedgerApplication, ctx: CommandContext, license_id: UUID) -> License:
    return _on_license(app, ctx, license_id, lambda lic, _: lic.reset_usage(at=ctx.at))[0]


def attach_license_entitlements(
    app: LedgerApplication, ctx: CommandContext, license_id: UUID, codes: Sequence[str]
) -> License:
    return _on_license(
        app, ctx, license_id, lambda lic, _: lic.attach_entitlements(codes=codes, at=ctx.at)
    )[0]


def detach_license_entitlements(
    app: LedgerApplication, ctx: CommandContext, license_id: UUID, codes: Sequence[str]
) -> License:
    return _on_license(
        app, ctx, license_id, lambda lic, _: lic.detach_entitlements(codes=codes, at=ctx.at)
    )[0]
