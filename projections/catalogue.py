"""Read models of the catalogue: products, policies and entitlements.

Each row keeps the columns reads filter and sort on plus `doc`, the camelCase wire
document derived from the aggregate. Partial unique indexes on `code` (migration 0003)
make a duplicate code fail the appending transaction, events included.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from ledger.domain.entitlement import Entitlement
from ledger.domain.policy import Policy
from ledger.domain.product import Product
from ledger.domain.templates import DEFAULTS
from ledger.domain.templates import camel
from projections.wire import iso_ms


def product_document(product: Product) -> dict[str, Any]:
    """The product as the API shows it, minus `licensesCount` (counted when read)."""
    return {
        "id": str(product.id),
        "name": product.name,
        "code": product.code,
        "description": product.description,
        "keyPrefix": product.key_prefix,
        "metadata": product.metadata,
        "createdAt": iso_ms(product.created_at),
        "updatedAt": iso_ms(product.updated_at),
    }


def policy_document(policy: Policy) -> dict[str, Any]:
    settings = {camel(name): getattr(policy, name) for name in DEFAULTS}
    return {
        "id": str(policy.id),
        "productId": policy.product_id,
        "name": policy.name,
        "template": policy.template,
        **settings,
        "entitlements": list(policy.entitlements),
        "metadata": policy.metadata,
        "createdAt": iso_ms(policy.created_at),
        "updatedAt": iso_ms(policy.updated_at),
    }


def entitlement_document(entitlement: Entitlement) -> dict[str, Any]:
    return {
        "id": str(entitlement.id),
        "code": entitlement.code,
        "name": entitlement.name,
        "description": entitlement.description,
        "metadata": entitlement.metadata,
        "createdAt": iso_ms(entitlement.created_at),
        "updatedAt": iso_ms(entitlement.updated_at),
    }


def project_product(curs: Cursor[DictRow], tenant_id: UUID, product: Product) -> None:
    curs.execute(
        "INSERT INTO products (tenant_id, id, code, created_at, deleted, doc)"
        " VALUES (%s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (tenant_id, id) DO UPDATE SET code = EXCLUDED.code,"
        " deleted = EXCLUDED.deleted, doc = EXCLUDED.doc",
        (
            tenant_id,
            product.id,
            product.code,
            product.created_at,
            product.deleted,
            Jsonb(product_document(product)),
        ),
        prepare=True,
    )


def project_policy(curs: Cursor[DictRow], tenant_id: UUID, policy: Policy) -> None:
    curs.execute(
        "INSERT INTO policies (tenant_id, id, product_id, created_at, deleted, doc)"
        " VALUES (%s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (tenant_id, id) DO UPDATE SET deleted = EXCLUDED.deleted,"
        " doc = EXCLUDED.doc",
        (
            tenant_id,
            policy.id,
            UUID(policy.product_id),
            policy.created_at,
            policy.deleted,
            Jsonb(policy_document(policy)),
        ),
        prepare=True,
    )


def project_entitlement(curs: Cursor[DictRow], tenant_id: UUID, entitlement: Entitlement) -> None:
    curs.execute(
        "INSERT INTO entitlements (tenant_id, id, code, created_at, deleted, doc)"
        " VALUES (%s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (tenant_id, id) DO UPDATE SET code = EXCLUDED.code,"
        " deleted = EXCLUDED.deleted, doc = EXCLUDED.doc",
        (
            tenant_id,
            entitlement.id,
            entitlement.code,
            entitlement.created_at,
            entitlement.deleted,
            Jsonb(entitlement_document(entitlement)),
        ),
        prepare=True,
    )
