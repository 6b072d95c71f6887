"""Commands on the catalogue: products, policies, entitlements."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from ledger.application import LedgerApplication
from ledger.commands.base import CommandContext
from ledger.commands.base import change
from ledger.commands.base import load_reference
from ledger.commands.base import save
from ledger.domain.entitlement import Entitlement
from ledger.domain.policy import Policy
from ledger.domain.product import DEFAULT_KEY_PREFIX
from ledger.domain.product import Product
from ledger.domain.templates import PolicySettings


def create_product(
    app: LedgerApplication,
    ctx: CommandContext,
    *,
    product_id: UUID,
    name: str,
    code: str,
    description: str | None = None,
    key_prefix: str = DEFAULT_KEY_PREFIX,
    metadata: Mapping[str, Any] | None = None,
) -> Product:
    product = Product.create(
        id=product_id,
        name=name,
        code=code,
        description=description,
        key_prefix=key_prefix,
        metadata=metadata,
        at=ctx.at,
    )
    save(app, ctx, product)
    return product


def update_product(
    app: LedgerApplication, ctx: CommandContext, product_id: UUID, changes: Mapping[str, Any]
) -> Product:
    """`changes`: snake_case fields of `Product.update` that the PATCH body gave."""
    product, _ = change(app, ctx, Product, product_id, lambda p: p.update(**changes, at=ctx.at))
    return product


def delete_product(app: LedgerApplication, ctx: CommandContext, product_id: UUID) -> None:
    change(app, ctx, Product, product_id, lambda p: p.delete(at=ctx.at))


def create_policy(
    app: LedgerApplication,
    ctx: CommandContext,
    *,
    policy_id: UUID,
    product_id: UUID,
    name: str,
    template: str | None = None,
    settings: PolicySettings | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Policy:
    def attempt() -> Policy:
        load_reference(app, Product, product_id, "productId")
        policy = Policy.create(
            id=policy_id,
            product_id=product_id,
            name=name,
            template=template,
            settings=settings,
            metadata=metadata,
            at=ctx.at,
        )
        save(app, ctx, policy)
        return policy

    return app.execute(ctx.tenant_id, attempt)


def update_policy(
    app: LedgerApplication,
    ctx: CommandContext,
    policy_id: UUID,
    changes: Mapping[str, Any],
    settings: PolicySettings | None = None,
) -> Policy:
    """`changes`: name/template/metadata given; `settings`: the tunable fields given."""
    policy, _ = change(
        app,
        ctx,
        Policy,
        policy_id,
        lambda p: p.update(**changes, settings=settings, at=ctx.at),
    )
    return policy


def delete_policy(app: LedgerApplication, ctx: CommandContext, policy_id: UUID) -> None:
    change(app, ctx, Policy, policy_id, lambda p: p.delete(at=ctx.at))


def attach_policy_entitlements(
    app: LedgerApplication, ctx: CommandContext, policy_id: UUID, codes: Sequence[str]
) -> Policy:
    """Codes must name existing entitlements: the caller checks (read model)."""
    policy, _ = change(
        app, ctx, Policy, policy_id, lambda p: p.attach_entitlements(codes=codes, at=ctx.at)
    )
    return policy


def detach_policy_entitlements(
    app: LedgerApplication, ctx: CommandContext, policy_id: UUID, codes: Sequence[str]
) -> Policy:
    policy, _ = change(
        app, ctx, Policy, policy_id, lambda p: p.detach_entitlements(codes=codes, at=ctx.at)
    )
    return policy


def create_entitlement(
    app: LedgerApplication,
    ctx: CommandContext,
    *,
    entitlement_id: UUID,
    code: str,
    name: str,
    description: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Entitlement:
    entitlement = Entitlement.create(
        id=entitlement_id,
        code=code,
        name=name,
        description=description,
        metadata=metadata,
        at=ctx.at,
    )
    save(app, ctx, entitlement)
    return entitlement


def update_entitlement(
    app: LedgerApplication, ctx: CommandContext, entitlement_id: UUID, changes: Mapping[str, Any]
) -> Entitlement:
    entitlement, _ = change(
        app, ctx, Entitlement, entitlement_id, lambda e: e.update(**changes, at=ctx.at)
    )
    return entitlement


def delete_entitlement(app: LedgerApplication, ctx: CommandContext, entitlement_id: UUID) -> None:
    change(app, ctx, Entitlement, entitlement_id, lambda e: e.delete(at=ctx.at))
