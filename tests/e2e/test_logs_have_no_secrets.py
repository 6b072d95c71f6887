"""A full run against a real server at debug level leaves no secret in its logs.

ARCHITECTURE.md §8.7: secrets are never logged. The server runs as users run it
(`licentric serve`, gunicorn, JSON logs on stderr at `debug`); the run goes through every
kind of endpoint with plain HTTP, successes and failures alike, and then the whole log is
searched for every secret the run saw or used, and for their keyed hashes.

To cover a new endpoint, add `Step`s to `STEPS`. Secrets in responses are harvested
automatically (any `key`, `apiKey`, `signingKey` or `secret` field), and a step whose
route the server does not serve yet (per its /openapi.json) is skipped, along with the
steps that need what it would have saved.
"""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Iterator
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

from api.config import derive_key
from ledger.crypto import keyed_hash
from tests.support.processes import running_server
from tests.support.processes import server_env

MASTER_KEY = secrets.token_bytes(32)
PEPPER = derive_key(MASTER_KEY, b"licentric-pepper")
ADMIN_TOKEN = "op-" + secrets.token_urlsafe(32)
# Response fields that carry a secret, wherever they appear in a response body.
SECRET_FIELDS = frozenset({"key", "apiKey", "signingKey", "secret"})
FINGERPRINT = "fp-logs-" + secrets.token_hex(6)
LATER = (datetime.now(UTC) + timedelta(days=400)).isoformat().replace("+00:00", "Z")
_PLACEHOLDER = re.compile(r"\{([\w.]+)\}")


class MissingValueError(LookupError):
    """A step names a value an earlier (skipped) step would have saved."""


@dataclass(frozen=True)
class Step:
    """One request. `{name.field}` in `path`, `auth`, `headers` and string values of `json`
    is replaced by what an earlier step saved (`save`) or by a credential of the run."""

    method: str
    path: str
    expect: int
    auth: str = "Bearer {live}"
    json: Any = None
    data: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    save: str | None = None  # keep the response's `data` (or whole body) under this name


V1 = "/api/v1"
STEPS: list[Step] = [
    # Operator.
    Step("POST", f"{V1}/admin/accounts", 401, auth="Bearer {wrong_operator}", json={"name": "x"}),
    Step("POST", f"{V1}/admin/accounts", 401, json={"name": "x"}),  # a tenant key
    Step("GET", f"{V1}/products", 401, auth="Bearer {operator}"),
    # Catalogue.
    Step(
        "POST",
        f"{V1}/products",
        201,
        json={"name": "Logs", "code": "logs", "keyPrefix": "LOGS"},
        save="product",
    ),
    Step("GET", f"{V1}/products", 200),
    Step("GET", f"{V1}/products/{{product.id}}", 200),
    Step("PATCH", f"{V1}/products/{{product.id}}", 200, json={"name": "Logs 2"}),
    Step("POST", f"{V1}/products", 409, json={"name": "Again", "code": "logs"}),
    Step(
        "POST",
        f"{V1}/products",
        400,
        data=b'{"name": "broken',
        headers={"Content-Type": "application/json"},
    ),
    Step("GET", f"{V1}/products/00000000-0000-4000-8000-000000000000", 404),
    Step("GET", f"{V1}/products", 401, auth="Bearer {wrong_key}"),
    Step("GET", f"{V1}/products", 200, auth="Bearer {test}"),
    Step(
        "POST",
        f"{V1}/entitlements",
        201,
        json={"code": "logs-feature", "name": "Feature"},
        save="entitlement",
    ),
    Step("GET", f"{V1}/entitlements", 200),
    Step(
        "POST",
        f"{V1}/policies",
        201,
        json={"productId": "{product.id}", "name": "Seats", "maxMachines": 2, "durationDays": 30},
        save="policy",
    ),
    Step("GET", f"{V1}/policies/{{policy.id}}", 200),
    Step(
        "POST", f"{V1}/policies/{{policy.id}}/entitlements", 200, json={"codes": ["logs-feature"]}
    ),
    # Licenses.
    Step(
        "POST",
        f"{V1}/licenses",
        201,
        json={
            "productId": "{product.id}",
            "policyId": "{policy.id}",
            "name": "Ada",
            "userEmail": "ada@example.com",
        },
        save="license",
    ),
    Step("GET", f"{V1}/licenses/{{license.id}}", 200),
    Step("GET", f"{V1}/licenses/by-key/{{license.key}}", 200),
    Step("GET", f"{V1}/licenses/by-key/{{wrong_license_key}}", 404),
    Step("GET", f"{V1}/licenses", 200),
    Step(
        "POST",
        f"{V1}/licenses/validate-key",
        200,
        auth="",
        json={"key": "{license.key}", "fingerprint": FINGERPRINT, "nonce": "n-1"},
    ),
    Step("POST", f"{V1}/licenses/validate-key", 200, auth="", json={"key": "{wrong_license_key}"}),
    Step(
        "POST",
        f"{V1}/machines",
        201,
        auth="License {license.key}",
        json={"fingerprint": FINGERPRINT, "platform": "linux", "hostname": "build-1"},
        save="machine",
    ),
    Step(
        "POST",
        f"{V1}/machines",
        401,
        auth="License {wrong_license_key}",
        json={"fingerprint": FINGERPRINT},
    ),
    Step("POST", f"{V1}/machines/{{machine.id}}/heartbeat", 200, auth="License {license.key}"),
    Step("GET", f"{V1}/machines/{{machine.id}}", 200, auth="License {license.key}"),
    Step("GET", f"{V1}/machines", 200),
    Step("POST", f"{V1}/licenses/{{license.id}}/validate", 200, json={"fingerprint": FINGERPRINT}),
    Step(
        "POST",
        f"{V1}/licenses/{{license.id}}/checkout",
        200,
        json={"fingerprint": FINGERPRINT, "ttl": 86400},
    ),
    Step(
        "POST",
        f"{V1}/licenses/{{license.id}}/checkout",
        200,
        json={"fingerprint": FINGERPRINT, "ttl": 86400, "encrypt": True},
    ),
    Step("GET", f"{V1}/licenses/{{license.id}}/checkouts", 200),
    Step("POST", f"{V1}/licenses/{{license.id}}/suspend", 200),
    Step("POST", f"{V1}/licenses/{{license.id}}/reinstate", 200),
    Step("POST", f"{V1}/licenses/{{license.id}}/renew", 200, json={"expiresAt": LATER}),
    Step("POST", f"{V1}/licenses/{{license.id}}/usage", 200, json={"increment": 1}),
    Step(
        "POST", f"{V1}/licenses/{{license.id}}/entitlements", 200, json={"codes": ["logs-feature"]}
    ),
    Step("GET", f"{V1}/licenses/{{license.id}}/events", 200),
    Step("DELETE", f"{V1}/machines/{{machine.id}}", 204, auth="License {license.key}"),
    Step("POST", f"{V1}/licenses/{{license.id}}/revoke", 200),
    Step("POST", f"{V1}/licenses/{{license.id}}/suspend", 409),  # revoked is terminal
    # Webhooks (a loopback URL: nothing is delivered, no worker runs).
    Step(
        "POST",
        f"{V1}/webhooks",
        201,
        json={"url": "http://127.0.0.1:9/hook", "events": ["*"]},
        save="webhook",
    ),
    Step("POST", f"{V1}/webhooks/{{webhook.id}}/rotate-secret", 200),
    Step("GET", f"{V1}/webhooks", 200),
    # The environment's own surface.
    Step("GET", f"{V1}/signing-keys", 200),
    Step("POST", f"{V1}/signing-keys/rotate", 200),
    Step("POST", f"{V1}/signing-keys/rotate", 200, json={"kind": "response"}),
    Step("GET", f"{V1}/events", 200),
    Step("GET", f"{V1}/audit/head", 200),
    Step("GET", f"{V1}/analytics", 200),
    # API keys.
    Step(
        "POST",
        f"{V1}/api-keys",
        201,
        json={"name": "ci", "scopes": ["products:read"]},
        save="api_key",
    ),
    Step(
        "POST",
        f"{V1}/api-keys",
        201,
        json={"name": "replayed"},
        headers={"Idempotency-Key": "logs-1"},
    ),
    Step(
        "POST",
        f"{V1}/api-keys",
        201,
        json={"name": "replayed"},
        headers={"Idempotency-Key": "logs-1"},
    ),
    Step(
        "POST",
        f"{V1}/api-keys",
        409,
        json={"name": "reused"},
        headers={"Idempotency-Key": "logs-1"},
    ),
    Step("POST", f"{V1}/api-keys", 403, auth="Bearer {api_key.key}", json={"name": "x"}),
    Step("GET", f"{V1}/products", 200, auth="Bearer {api_key.key}"),
    Step("GET", f"{V1}/api-keys", 200),
    Step("DELETE", f"{V1}/api-keys/{{api_key.id}}", 204),
    Step("GET", f"{V1}/products", 401, auth="Bearer {api_key.key}"),
    Step("DELETE", f"{V1}/api-keys/{{api_key.id}}", 404),
    Step("POST", f"{V1}/api-keys", 400, json={"name": "x", "scopes": ["root"]}),
    # Whatever is left.
    Step("GET", f"{V1}/no-such-route", 404),
    Step("GET", f"{V1}/openapi.json", 200, auth=""),
]
# Steps that must run whatever else the server serves: the test means nothing without them.
ESSENTIAL = {f"POST {V1}/products", f"POST {V1}/api-keys", f"DELETE {V1}/api-keys/{{api_key.id}}"}


@dataclass
class Run:
    base_url: str
    values: dict[str, Any]
    served: list[tuple[str, re.Pattern[str]]]
    secrets: set[str] = field(default_factory=set)
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def fill(self, text: str, *, in_path: bool = False) -> str:
        def value(match: re.Match[str]) -> str:
            found: Any = self.values
            for part in match.group(1).split("."):
                if not isinstance(found, Mapping) or part not in found:
                    raise MissingValueError(match.group(1))
                found = found[part]
            return quote(str(found), safe="") if in_path else str(found)

        return _PLACEHOLDER.sub(value, text)

    def fill_json(self, body: Any) -> Any:
        if isinstance(body, str):
            return self.fill(body)
        if isinstance(body, dict):
            return {k: self.fill_json(v) for k, v in body.items()}
        if isinstance(body, list):
            return [self.fill_json(v) for v in body]
        return body

    def is_served(self, method: str, path: str) -> bool:
        bare = path.split("?", maxsplit=1)[0]
        return any(m == method and pattern.fullmatch(bare) for m, pattern in self.served)

    def do(self, step: Step) -> None:
        name = f"{step.method} {step.path}"
        try:
            path = self.fill(step.path, in_path=True)
            auth = self.fill(step.auth)
            headers = {k: self.fill(v) for k, v in step.headers.items()}
            body = self.fill_json(step.json)
        except MissingValueError:
            self.skipped.append(name)
            return
        if step.expect != 404 and not self.is_served(step.method, path):
            self.skipped.append(name)
            return
        if auth:
            headers["Authorization"] = auth
        url = self.base_url + path
        response = requests.request(
            step.method, url, json=body, data=step.data, headers=headers, timeout=30
        )
        assert response.status_code == step.expect, (name, response.status_code, response.text)
        self.ran.append(name)
        if not response.headers.get("Content-Type", "").startswith("application/json"):
            return
        document = response.json()
        self.secrets.update(harvest(document))
        if step.save is not None:
            self.values[step.save] = document.get("data", document)


def harvest(document: Any) -> Iterator[str]:
    """Every secret-carrying field's value, at any depth."""
    if isinstance(document, dict):
        for key, value in document.items():
            if key in SECRET_FIELDS and isinstance(value, str):
                yield value
            else:
                yield from harvest(value)
    elif isinstance(document, list):
        for item in document:
            yield from harvest(item)


def served_operations(base_url: str) -> list[tuple[str, re.Pattern[str]]]:
    document = requests.get(base_url + f"{V1}/openapi.json", timeout=10).json()
    return [
        (method.upper(), re.compile(re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(path))))
        for path, operations in document["paths"].items()
        for method in operations
    ]


def forbidden_strings(secret_values: set[str]) -> dict[str, str]:
    """Each secret and its keyed hash (hex), with a label for the failure message."""
    found: dict[str, str] = {}
    for index, value in enumerate(sorted(secret_values)):
        found[value] = f"secret #{index} ({value[:6]}…)"
        found[keyed_hash(PEPPER, value)] = f"keyed hash of secret #{index} ({value[:6]}…)"
    found[base64.b64encode(MASTER_KEY).decode()] = "master key (base64)"
    found[MASTER_KEY.hex()] = "master key (hex)"
    found[PEPPER.hex()] = "pepper (hex)"
    return found


@pytest.fixture(scope="module")
def logged_run(fresh_database: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, str]:
    scratch: Path = tmp_path_factory.mktemp("logs")
    env = server_env(
        DATABASE_URL=fresh_database(),
        LICENTRIC_MASTER_KEY=base64.b64encode(MASTER_KEY).decode(),
        LICENTRIC_ADMIN_TOKEN=ADMIN_TOKEN,
        LICENTRIC_LOG_LEVEL="debug",
        LICENTRIC_DATA_DIR=str(scratch / "data"),
        LICENTRIC_RATE_LIMITS="off",
        LICENTRIC_WEBHOOK_ALLOW_PRIVATE="true",
    )
    with running_server(env, log_dir=scratch, threads=2) as server:
        opened = requests.post(
            server.url(f"{V1}/admin/accounts"),
            json={"name": "Log Secrecy Inc"},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=30,
        )
        assert opened.status_code == 201, opened.text
        environments = opened.json()["environments"]
        run = Run(
            server.base_url,
            values={
                "live": environments["live"]["apiKey"],
                "test": environments["test"]["apiKey"],
                "operator": ADMIN_TOKEN,
                "wrong_operator": "op-" + secrets.token_urlsafe(32),
                "wrong_key": "lk_live_" + secrets.token_hex(24),
                "wrong_license_key": "LOGS-ABCD-EFGH-JKLM-NPQR",
            },
            served=served_operations(server.base_url),
        )
        run.secrets.update(harvest(opened.json()))
        run.secrets.update(
            run.values[name]
            for name in ("operator", "wrong_operator", "wrong_key", "wrong_license_key")
        )
        for step in STEPS:
            run.do(step)
        assert server.stop() == 0
        log = server.log_text()
    return run, log


def test_the_run_exercised_the_api(logged_run: tuple[Run, str]) -> None:
    run, log = logged_run

    assert set(run.ran) >= ESSENTIAL, run.skipped
    assert "listening on" in log  # the capture works: the server's own lines are there
    # Account keys, signing secrets, created API keys (the replay's counted once).
    assert len(run.secrets) >= 4 + 2 + 4


def test_logs_contain_no_secret_nor_keyed_hash(logged_run: tuple[Run, str]) -> None:
    run, log = logged_run

    leaked = {
        label: next(line[:300] for line in log.splitlines() if text in line)
        for text, label in forbidden_strings(run.secrets).items()
        if text in log
    }

    assert not leaked, leaked
