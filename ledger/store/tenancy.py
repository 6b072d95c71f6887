"""The tenant a unit of work runs for.

A contextvar, not a thread-local: gthread workers reuse threads across requests, and a
`tenant_scope` always restores the previous value when it exits. Every transaction the
store opens copies this value into Postgres with `set_config('app.tenant', …, true)`, so
row-level security sees it, and only for that transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any
from uuid import UUID

from psycopg import Cursor

_current_tenant: ContextVar[UUID | None] = ContextVar("licentric_tenant", default=None)


class TenantNotSetError(RuntimeError):
    """Store access outside a tenant scope: a programming error, never a request error."""


@contextmanager
def tenant_scope(tenant_id: UUID) -> Iterator[UUID]:
    token = _current_tenant.set(tenant_id)
    try:
        yield tenant_id
    finally:
        _current_tenant.reset(token)


def current_tenant() -> UUID | None:
    return _current_tenant.get()


def require_tenant() -> UUID:
    tenant = _current_tenant.get()
    if tenant is None:
        msg = "no tenant in scope: wrap store access in tenant_scope(tenant_id)"
        raise TenantNotSetError(msg)
    return tenant


def set_transaction_tenant(curs: Cursor[Any], tenant_id: UUID) -> None:
    """Make RLS see `tenant_id` until the current transaction ends (is_local = true)."""
    curs.execute("SELECT set_config('app.tenant', %s, true)", (str(tenant_id),), prepare=True)
