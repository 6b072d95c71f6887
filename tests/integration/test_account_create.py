"""`licentric account create`: the API.md §3 document, secrets stored only hashed/encrypted."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import subprocess
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_der_public_key

from api.config import Config
from tests.support.processes import licentric_command
from tests.support.processes import server_env

MASTER_KEY = base64.b64encode(secrets.token_bytes(32)).decode()


def create_account(database_url: str, name: str) -> dict[str, Any]:
    result = subprocess.run(
        [*licentric_command(), "account", "create", "--name", name, "--json"],
        env=server_env(DATABASE_URL=database_url, LICENTRIC_MASTER_KEY=MASTER_KEY),
        capture_output=True,
        check=True,
        timeout=60,
    )
    document: dict[str, Any] = json.loads(result.stdout)
    return document


@pytest.fixture(scope="module")
def database(fresh_database: Any) -> str:
    url: str = fresh_database()
    return url


@pytest.fixture(scope="module")
def two_accounts(database: str) -> tuple[dict[str, Any], dict[str, Any]]:
    return create_account(database, "acme"), create_account(database, "globex")


def test_account_create_prints_the_documented_shape(two_accounts: Any) -> None:
    document = two_accounts[0]
    assert set(document) == {"accountId", "environments"}
    assert set(document["environments"]) == {"live", "test"}
    for env_name, env in document["environments"].items():
        assert set(env) == {"apiKey", "signingKey", "publicKey"}
        assert env["apiKey"].startswith(f"lk_{env_name}_")
        assert len(env["apiKey"]) >= len("lk_live_") + 40  # ≥ 32 random bytes in base62
        assert len(env["signingKey"]) == 64
        int(env["signingKey"], 16)
        assert env["publicKey"].startswith("MCowBQYDK2VwAyEA")
        assert isinstance(load_der_public_key(base64.b64decode(env["publicKey"])), Ed25519PublicKey)


def test_every_account_and_environment_gets_its_own_keys(two_accounts: Any) -> None:
    values = [
        env[field]
        for document in two_accounts
        for env in document["environments"].values()
        for field in ("apiKey", "signingKey", "publicKey")
    ]
    assert len(values) == len(set(values)) == 12
    assert two_accounts[0]["accountId"] != two_accounts[1]["accountId"]


def test_api_key_resolves_to_its_tenant_through_the_narrow_lookup(
    database: str, two_accounts: Any
) -> None:
    pepper = Config.from_env({"LICENTRIC_MASTER_KEY": MASTER_KEY, "DATABASE_URL": database}).pepper
    tenants = set()
    with psycopg.connect(database, options="-c role=licentric_app", autocommit=True) as conn:
        for document in two_accounts:
            for env in document["environments"].values():
                key_hash = hmac.new(pepper, env["apiKey"].encode(), hashlib.sha256).digest()
                rows = conn.execute(
                    "SELECT tenant_id FROM resolve_credential(%s, 'api_key')", (key_hash,)
                ).fetchall()
                assert len(rows) == 1
                tenants.add(rows[0][0])
        # The lookup table shows the app role only its own tenant's rows (RLS), and with
        # no tenant set, none: crossing tenants goes only through resolve_credential().
        assert conn.execute("SELECT * FROM credential_lookup").fetchall() == []
    assert len(tenants) == 4


def test_no_secret_is_stored_in_plain_text(database: str, two_accounts: Any) -> None:
    with psycopg.connect(database) as conn:  # the owner: sees every tenant's rows
        dump = "\n".join(
            str(row)
            for table in ("events", "api_keys", "tenants", "snapshots")
            for row in conn.execute(f"SELECT * FROM {table}").fetchall()
        )
    for document in two_accounts:
        for env in document["environments"].values():
            assert env["apiKey"] not in dump
            assert env["signingKey"] not in dump
