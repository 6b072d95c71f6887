"""The tenant registry row of an environment (environment id = tenant id)."""

from __future__ import annotations

from uuid import UUID

from psycopg import Cursor
from psycopg.rows import DictRow

from ledger.domain.environment import Environment


def project_environment(curs: Cursor[DictRow], tenant_id: UUID, env: Environment) -> None:
    curs.execute(
        "INSERT INTO tenants (tenant_id, account_id, environment, created_at)"
        " VALUES (%s, %s, %s, %s) ON CONFLICT (tenant_id) DO NOTHING",
        (tenant_id, env.account_id, str(env.name), env.created_on),
        prepare=True,
    )
