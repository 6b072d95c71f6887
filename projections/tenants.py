"""The tenant registry row of an environment (environment id = tenant id).

It also carries the environment's response-signing secret, still encrypted, so signing
a validation response reads it with the license instead of replaying the environment.
"""

from __future__ import annotations

from uuid import UUID

from psycopg import Cursor
from psycopg.rows import DictRow

from ledger.domain.environment import Environment


def project_environment(curs: Cursor[DictRow], tenant_id: UUID, env: Environment) -> None:
    curs.execute(
        "INSERT INTO tenants (tenant_id, account_id, environment, created_at,"
        " encrypted_response_secret) VALUES (%s, %s, %s, %s, %s) ON CONFLICT (tenant_id)"
        " DO UPDATE SET encrypted_response_secret = EXCLUDED.encrypted_response_secret"
        " WHERE tenants.encrypted_response_secret"
        " IS DISTINCT FROM EXCLUDED.encrypted_response_secret",
        (
            tenant_id,
            env.account_id,
            str(env.name),
            env.created_on,
            env.encrypted_response_secret,
        ),
        prepare=True,
    )
