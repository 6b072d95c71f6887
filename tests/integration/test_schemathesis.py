"""schemathesis against our own `/api/v1/openapi.json`, served by a real `licentric serve`.

Every operation the document lists gets generated requests, valid and invalid (mode
`all`), authenticated as a real tenant whose product, policy, entitlement, license and
machine ids are used for the path parameters, so requests reach the code behind the
404s. Checked: no 5xx, every status documented, every body of the documented content
type and schema. Bounded for CI: the coverage phase (boundary values of every field)
plus a few fuzzed examples per operation, deterministic data (the same requests every
run), no shrinking; well under a minute on 2 cores.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings
from schemathesis.config import SchemathesisConfig

from tests.support.processes import ServerProcess
from tests.support.processes import running_server
from tests.support.processes import server_env

ADMIN_TOKEN = "schemathesis-operator-" + secrets.token_hex(16)
EXAMPLES_PER_OPERATION = 8

# The checks this suite promises; the others judge API design choices (e.g. that random
# valid data is accepted, which random ids never are) rather than conformance.
CHECKS = """
[checks]
enabled = false
not_a_server_error.enabled = true
status_code_conformance.enabled = true
content_type_conformance.enabled = true
response_schema_conformance.enabled = true
"""


@pytest.fixture(scope="module")
def server(
    fresh_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    scratch: Path = tmp_path_factory.mktemp("schemathesis")
    env = server_env(
        DATABASE_URL=fresh_database(),
        LICENTRIC_MASTER_KEY=base64.b64encode(secrets.token_bytes(32)).decode(),
        LICENTRIC_ADMIN_TOKEN=ADMIN_TOKEN,
        LICENTRIC_DATA_DIR=str(scratch / "data"),
    )
    with running_server(env, log_dir=scratch, threads=4) as process:
        yield process


def _created(response: requests.Response) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    data: dict[str, Any] = response.json()["data"]
    return data


@pytest.fixture(scope="module")
def tenant(server: ServerProcess) -> dict[str, str]:
    """A live tenant (opened through the operator API) with one of each resource."""
    opened = requests.post(
        server.url("/api/v1/admin/accounts"),
        json={"name": "fuzz"},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=30,
    )
    assert opened.status_code == 201, opened.text
    api_key = opened.json()["environments"]["live"]["apiKey"]
    with requests.Session() as http:
        http.headers["Authorization"] = f"Bearer {api_key}"

        def create(path: str, body: dict[str, Any]) -> dict[str, Any]:
            return _created(http.post(server.url(f"/api/v1/{path}"), json=body, timeout=30))

        product = create("products", {"name": "Fuzzed", "code": "fuzzed", "keyPrefix": "FUZ"})
        policy = create("policies", {"productId": product["id"], "name": "Fuzz policy"})
        entitlement = create("entitlements", {"code": "fuzz-feature", "name": "Feature"})
        license_ = create("licenses", {"productId": product["id"], "policyId": policy["id"]})
        machine = create("machines", {"licenseId": license_["id"], "fingerprint": "fuzz-fp-0001"})
        spare_key = create("api-keys", {"name": "spare", "scopes": ["products:read"]})
    return {
        "api_key": api_key,
        "product_id": product["id"],
        "policy_id": policy["id"],
        "entitlement_id": entitlement["id"],
        "license_id": license_["id"],
        "key": license_["key"],
        "machine_id": machine["id"],
        "api_key_id": spare_key["id"],
    }


def _config(server: ServerProcess, tenant: dict[str, str]) -> SchemathesisConfig:
    # Real ids for the path parameters (a random uuid only ever meets the 404 path).
    parameters = "\n".join(
        f'"path.{name}" = "{value}"' for name, value in tenant.items() if name != "api_key"
    )
    return SchemathesisConfig.from_str(
        f"""
base-url = "{server.base_url}"
seed = 20260115
request-timeout = 30

[generation]
mode = "all"
max-examples = {EXAMPLES_PER_OPERATION}
deterministic = true
no-shrink = true
with-security-parameters = false

[phases.coverage]
# Undocumented methods only meet Falcon's 405 envelope (tests/unit/api/test_errors.py).
unexpected-methods = []

[parameters]
{parameters}
{CHECKS}
"""
    )


@pytest.fixture(scope="module")
def api_schema(server: ServerProcess, tenant: dict[str, str]) -> Any:
    return schemathesis.openapi.from_url(
        server.url("/api/v1/openapi.json"), config=_config(server, tenant)
    )


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_documented(
    case: schemathesis.Case, tenant: dict[str, str]
) -> None:
    operator = case.operation.path.startswith("/api/v1/admin/")
    token = ADMIN_TOKEN if operator else tenant["api_key"]
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"})


def test_requests_gunicorn_refuses_are_json_400s(server: ServerProcess) -> None:
    """A request line over gunicorn's 4094 bytes never reaches Falcon: still no HTML."""
    response = requests.get(server.url("/api/v1/products?cursor=" + "x" * 5000), timeout=10)
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == "VALIDATION_ERROR"
    assert body["requestId"] == response.headers["X-Request-Id"]
