"""The production database roles of docs/security.md, on an embedded PostgreSQL of this
test's own (fresh cluster: the roles are cluster-wide, and the shared server has them).

- an ordinary owner role (LOGIN CREATEROLE, not SUPERUSER, not BYPASSRLS) can run every
  migration;
- the server runs as a login role that is only a member of `licentric_app` and owns
  nothing: the API works, and a `SET ROLE NONE` (what an injected statement could do)
  gains nothing: row-level security still applies and no table can be altered;
- nor can it become the owner or the cross-tenant auditor role; a superuser, for
  contrast, sees every tenant's events.
"""

from __future__ import annotations

import base64
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from psycopg.conninfo import conninfo_to_dict
from psycopg.conninfo import make_conninfo

from ledger.store.migrate import migrate
from tests.support.processes import licentric_command
from tests.support.processes import running_server
from tests.support.processes import server_env
from tests.support.services import own_embedded_postgres

ADMIN_TOKEN = "roles-operator-" + secrets.token_hex(16)


def as_user(url: str, user: str, dbname: str) -> str:
    params = conninfo_to_dict(url)
    params.update(user=user, dbname=dbname, password="")
    return make_conninfo(**params)


@pytest.fixture
def cluster() -> Iterator[str]:
    """The superuser URL of a fresh embedded PostgreSQL."""
    with own_embedded_postgres() as (url, _):
        yield url


def test_least_privilege_roles_run_the_service_and_confine_an_escape(
    cluster: str, tmp_path: Path
) -> None:
    # What the operator runs once, as a superuser (docs/security.md, "Database roles").
    with psycopg.connect(cluster, autocommit=True) as conn:
        conn.execute("CREATE ROLE licentric_owner LOGIN CREATEROLE NOSUPERUSER NOBYPASSRLS")
        conn.execute("CREATE DATABASE licentric_prod OWNER licentric_owner")
    owner = as_user(cluster, "licentric_owner", "licentric_prod")
    assert migrate(owner)
    with psycopg.connect(owner, autocommit=True) as conn:
        conn.execute("CREATE ROLE licentric_api LOGIN NOSUPERUSER NOBYPASSRLS")
        conn.execute("GRANT licentric_app TO licentric_api")
    api = as_user(cluster, "licentric_api", "licentric_prod")

    env = server_env(
        DATABASE_URL=api,
        LICENTRIC_MASTER_KEY=base64.b64encode(secrets.token_bytes(32)).decode(),
        LICENTRIC_ADMIN_TOKEN=ADMIN_TOKEN,
        LICENTRIC_DATA_DIR=str(tmp_path / "data"),
    )
    with running_server(env, log_dir=tmp_path) as server:
        opened = requests.post(
            server.url("/api/v1/admin/accounts"),
            json={"name": "roles"},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=30,
        )
        assert opened.status_code == 201, opened.text
        key = opened.json()["environments"]["live"]["apiKey"]

        def post(path: str, body: dict[str, Any], auth: str = f"Bearer {key}") -> Any:
            headers = {"Authorization": auth} if auth else {}
            response = requests.post(server.url(path), json=body, headers=headers, timeout=30)
            assert response.status_code in (200, 201), response.text
            return response.json()["data"]

        product = post("/api/v1/products", {"name": "P", "code": "p"})
        policy = post("/api/v1/policies", {"productId": product["id"], "name": "Pol"})
        license_ = post("/api/v1/licenses", {"productId": product["id"], "policyId": policy["id"]})
        post("/api/v1/machines", {"fingerprint": "roles-fp-01"}, f"License {license_['key']}")
        validation = post("/api/v1/licenses/validate-key", {"key": license_["key"]}, "")
        assert validation["license"]["id"] == license_["id"]

    # The background loops (webhooks, timers, re-signing) run as the same role.
    worker = subprocess.run(
        [*licentric_command(), "worker", "--once"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert worker.returncode == 0, worker.stderr[-3000:]
    assert "permission denied" not in worker.stderr.lower(), worker.stderr[-3000:]

    with psycopg.connect(api, autocommit=True) as conn:
        conn.execute("SET ROLE NONE")  # back to the login role: no more than the app role
        row = conn.execute("SELECT count(*) FROM events").fetchone()
        assert row == (0,)  # row-level security still applies: no tenant set, no rows
        for statement in (
            "ALTER TABLE events DISABLE ROW LEVEL SECURITY",
            "DROP TABLE events",
            # The owner may become the cross-tenant auditor (migration 0009); the
            # serving role may become neither.
            "SET ROLE licentric_auditor",
            "SET ROLE licentric_owner",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
    with psycopg.connect(as_user(cluster, "postgres", "licentric_prod")) as conn:
        row = conn.execute("SELECT count(*) FROM events").fetchone()
        assert row is not None
        assert row[0] > 0  # a superuser bypasses every policy: never serve as one
