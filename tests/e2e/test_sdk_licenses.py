"""The official SDK (`licentric` 0.3.0) reads licenses from a real `licentric serve`.

The account is created with the CLI, the catalogue and the license with plain HTTP; a
machine is activated through the ledger's command (the one write path), and then the
SDK's `get_license` and `get_license_by_key` must parse the documents with their
`policy` and `machines` populated. Neither the raw JSON nor the SDK's objects may carry
the license key or anything shaped like a 64-hex hash.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote
from uuid import UUID
from uuid import uuid4

import pytest
import requests
from licentric import Licentric

from api.app import ledger_application
from api.config import Config
from ledger.commands.base import Actor
from ledger.commands.base import CommandContext
from ledger.commands.base import change
from ledger.crypto import keyed_hash
from ledger.domain.license import License
from projections.credentials import resolve_license_key
from tests.support.processes import ServerProcess
from tests.support.processes import licentric_command
from tests.support.processes import running_server
from tests.support.processes import server_env

MASTER_KEY = base64.b64encode(secrets.token_bytes(32)).decode()
HEX_DIGEST = re.compile(r"(?<![0-9a-fA-F])[0-9a-fA-F]{64}(?![0-9a-fA-F])")
FINGERPRINT = "fp-sdk-e2e-" + secrets.token_urlsafe(6)


@dataclass
class World:
    server: ServerProcess
    api_key: str
    signing_key: str
    policy: dict[str, Any]
    license: dict[str, Any]  # the 201 document, with `key`
    machine_id: str


def _create_account(database_url: str) -> dict[str, Any]:
    result = subprocess.run(
        [*licentric_command(), "account", "create", "--name", "sdk-e2e", "--json"],
        env=server_env(DATABASE_URL=database_url, LICENTRIC_MASTER_KEY=MASTER_KEY),
        capture_output=True,
        check=True,
        timeout=60,
    )
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def _post(server: ServerProcess, api_key: str, path: str, body: dict[str, Any]) -> Any:
    response = requests.post(
        server.url(path), json=body, headers={"Authorization": f"Bearer {api_key}"}, timeout=10
    )
    assert response.status_code == 201, response.text
    return response.json()["data"]


def _activate_machine(database_url: str, data_dir: Path, license_key: str, license_id: str) -> str:
    """Through the ledger command, in the license's tenant (found from its key)."""
    config = Config.from_env(
        {
            "DATABASE_URL": database_url,
            "LICENTRIC_MASTER_KEY": MASTER_KEY,
            "LICENTRIC_DATA_DIR": str(data_dir),
        }
    )
    ledger = ledger_application(config)
    try:
        with ledger.transaction() as curs:
            credential = resolve_license_key(
                curs, bytes.fromhex(keyed_hash(config.pepper, license_key))
            )
        assert credential is not None
        ctx = CommandContext(credential.tenant_id, Actor("operator"), datetime.now(UTC))
        machine_id = uuid4()
        change(
            ledger,
            ctx,
            License,
            UUID(license_id),
            lambda lic: lic.activate_machine(
                machine_id=machine_id,
                fingerprint=FINGERPRINT,
                name="build box",
                max_machines=None,
                at=ctx.at,
            ),
        )
        return str(machine_id)
    finally:
        ledger.close()


@pytest.fixture(scope="module")
def world(fresh_database: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    database_url: str = fresh_database()
    live = _create_account(database_url)["environments"]["live"]
    env = server_env(DATABASE_URL=database_url, LICENTRIC_MASTER_KEY=MASTER_KEY)
    with running_server(env, log_dir=tmp_path_factory.mktemp("logs")) as server:
        key = live["apiKey"]
        product = _post(
            server,
            key,
            "/api/v1/products",
            {"name": "SDK", "code": "sdk-e2e", "keyPrefix": "SDK"},
        )
        policy = _post(
            server,
            key,
            "/api/v1/policies",
            {"productId": product["id"], "name": "Desktop", "template": "desktop_app"},
        )
        license_ = _post(
            server,
            key,
            "/api/v1/licenses",
            {"productId": product["id"], "policyId": policy["id"], "userEmail": "e2e@example.com"},
        )
        machine_id = _activate_machine(
            database_url, tmp_path_factory.mktemp("data"), license_["key"], license_["id"]
        )
        yield World(server, key, live["signingKey"], policy, license_, machine_id)


@pytest.fixture
def sdk(world: World) -> Iterator[Licentric]:
    with Licentric(
        api_key=world.api_key,
        base_url=world.server.base_url,
        signing_key=world.signing_key,
        max_retries=0,
    ) as client:
        yield client


def test_issuing_returns_the_key_with_the_products_prefix(world: World) -> None:
    assert re.fullmatch(r"SDK(-[A-HJ-NP-Z2-9]{4}){4}", world.license["key"])


def test_sdk_get_license_has_policy_and_machines(sdk: Licentric, world: World) -> None:
    license_ = sdk.get_license(world.license["id"])
    assert license_.id == world.license["id"]
    assert license_.status == "active"
    assert license_.user_email == "e2e@example.com"
    assert license_.policy is not None
    assert license_.policy.id == world.policy["id"]
    assert license_.policy.max_machines == 2
    assert license_.machines is not None
    assert [(m.id, m.fingerprint, m.name) for m in license_.machines] == [
        (world.machine_id, FINGERPRINT, "build box")
    ]
    assert license_.machines[0].heartbeat_status == "NOT_STARTED"


def test_sdk_get_license_by_key_returns_the_same_license(sdk: Licentric, world: World) -> None:
    by_key = sdk.get_license_by_key(world.license["key"])
    by_id = sdk.get_license(world.license["id"])
    assert by_key == by_id
    assert by_key.machines is not None
    assert len(by_key.machines) == 1


def test_neither_json_nor_sdk_objects_carry_the_key_or_a_hash(sdk: Licentric, world: World) -> None:
    key = world.license["key"]
    headers = {"Authorization": f"Bearer {world.api_key}"}
    for path in (
        f"/api/v1/licenses/{world.license['id']}",
        f"/api/v1/licenses/by-key/{quote(key, safe='')}",
        "/api/v1/licenses",
    ):
        response = requests.get(world.server.url(path), headers=headers, timeout=10)
        assert response.status_code == 200, response.text
        assert key not in response.text
        assert not HEX_DIGEST.search(response.text), response.text
    for license_ in (sdk.get_license(world.license["id"]), sdk.get_license_by_key(key)):
        dumped = license_.model_dump_json()
        assert key not in dumped
        assert not HEX_DIGEST.search(dumped), dumped
        assert not hasattr(license_, "key")
