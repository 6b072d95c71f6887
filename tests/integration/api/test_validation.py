"""Validation over HTTP (API.md §5): every code, signatures, uses exact under concurrency,
and the batched `validation.*` events reaching the ledger."""

from __future__ import annotations

import hashlib
import hmac
import multiprocessing
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any
from uuid import UUID
from uuid import uuid4

import falcon.testing
import psycopg
import pytest

from api.app import create_app
from api.config import Config
from ledger.application import LedgerApplication
from ledger.commands.api_keys import create_api_key
from ledger.commands.licenses import ban_license
from ledger.commands.licenses import delete_license
from ledger.commands.licenses import revoke_license
from ledger.commands.licenses import suspend_license
from ledger.domain.codes import ExpirationStrategy
from ledger.store.migrate import migration_files
from tests.integration.api.conftest import Account
from tests.integration.api.conftest import CheckedClient
from tests.integration.api.conftest import Licenses
from tests.support.licensing import IssuedKey
from tests.support.licensing import activate
from tests.support.licensing import context
from tests.support.licensing import issue

VALIDATE_KEY = "/api/v1/licenses/validate-key"
FINGERPRINT = "fp-workstation-0001"
OTHER_FINGERPRINT = "fp-laptop-000002"


def validate_path(license_id: UUID) -> str:
    return f"/api/v1/licenses/{license_id}/validate"


def assert_signed(result: falcon.testing.Result, signing_key: str) -> None:
    """What the SDK checks: hex HMAC-SHA256(key text, "<ts>." + exact body), fresh ts."""
    timestamp = result.headers["X-Signature-Timestamp"]
    expected = hmac.new(
        signing_key.encode(), f"{timestamp}.".encode() + result.content, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(result.headers["X-Signature"], expected)
    assert abs(int(timestamp) - time.time()) <= 300


pytestmark = pytest.mark.usefixtures("validation_events_flushed")


def validated(
    client: CheckedClient, issued: IssuedKey | str, signing_key: str | None, **body: Any
) -> dict[str, Any]:
    """POST validate-key; 200 always; signed with `signing_key` (None: unsigned)."""
    key = issued if isinstance(issued, str) else issued.key
    result = client.post(VALIDATE_KEY, json={"key": key, **body})
    assert result.status_code == 200, result.text
    if signing_key is None:
        assert "X-Signature" not in result.headers
    else:
        assert_signed(result, signing_key)
    data: dict[str, Any] = result.json["data"]
    return data


def _code(data: dict[str, Any]) -> tuple[bool, str]:
    return data["valid"], data["code"]


# Every code, end to end.


def test_valid_with_a_machine(client: CheckedClient, licenses: Licenses, acme: Account) -> None:
    issued = licenses.issue(
        {"max_machines": 2}, policy_entitlements=["pro"], entitlements=["export"], name="Seat"
    )
    machine_id = activate(licenses.ledger, issued, FINGERPRINT)
    data = validated(client, issued, acme.live.signing_key, fingerprint=FINGERPRINT)
    assert _code(data) == (True, "VALID")
    assert data["machine"] == {
        "id": str(machine_id),
        "fingerprint": FINGERPRINT,
        "name": "Workstation",
        "heartbeatStatus": "NOT_STARTED",
    }
    assert data["license"]["id"] == str(issued.license_id)
    assert data["license"]["status"] == "active"
    assert data["license"]["name"] == "Seat"
    assert data["entitlements"] == ["pro", "export"]
    assert data["metadata"]["ts"].endswith("Z")
    assert "nonce" not in data["metadata"]


def test_unknown_key_is_not_found_and_unsigned(client: CheckedClient) -> None:
    data = validated(client, "LIC-AAAA-BBBB-CCCC-DDDD", None, fingerprint=FINGERPRINT)
    assert _code(data) == (False, "NOT_FOUND")
    assert (data["license"], data["machine"], data["entitlements"]) == (None, None, [])


@pytest.mark.parametrize(
    ("action", "code", "status"),
    [
        (ban_license, "BANNED", "banned"),
        (revoke_license, "REVOKED", "revoked"),
        (suspend_license, "SUSPENDED", "suspended"),
    ],
)
def test_license_states_are_refused(
    client: CheckedClient,
    licenses: Licenses,
    acme: Account,
    action: Callable[..., object],
    code: str,
    status: str,
) -> None:
    issued = licenses.issue()
    activate(licenses.ledger, issued, FINGERPRINT)
    action(licenses.ledger, context(issued.tenant_id), issued.license_id)
    data = validated(client, issued, acme.live.signing_key, fingerprint=FINGERPRINT)
    assert _code(data) == (False, code)
    assert data["license"]["status"] == status


@pytest.mark.parametrize(
    ("strategy", "valid"),
    [
        (ExpirationStrategy.RESTRICT_ACCESS, False),
        (ExpirationStrategy.REVOKE, False),
        (ExpirationStrategy.ALLOW_ACCESS, True),
    ],
)
def test_expired_license_is_valid_only_under_allow_access(
    client: CheckedClient,
    licenses: Licenses,
    acme: Account,
    strategy: ExpirationStrategy,
    valid: bool,
) -> None:
    issued = licenses.issue(
        {"expiration_strategy": strategy.value, "require_fingerprint": False},
        expires_at=datetime.now(UTC) - timedelta(days=1),
    )
    data = validated(client, issued, acme.live.signing_key)
    assert _code(data) == (valid, "EXPIRED")
    assert data["license"]["status"] == "expired"


def test_uses_are_counted_up_to_max_uses(
    client: CheckedClient, licenses: Licenses, acme: Account
) -> None:
    issued = licenses.issue({"max_uses": 2, "require_fingerprint": False})
    results = [validated(client, issued, acme.live.signing_key) for _ in range(3)]
    assert [_code(r) for r in results] == [
        (True, "VALID"),
        (True, "VALID"),
        (False, "USAGE_LIMIT_EXCEEDED"),
    ]
    assert [r["license"]["usesCount"] for r in results] == [1, 2, 2]


def test_max_uses_override_wins(client: CheckedClient, licenses: Licenses, acme: Account) -> None:
    issued = licenses.issue({"max_uses": 5, "require_fingerprint": False}, max_uses_override=1)
    assert _code(validated(client, issued, acme.live.signing_key)) == (True, "VALID")
    data = validated(client, issued, acme.live.signing_key)
    assert _code(data) == (False, "USAGE_LIMIT_EXCEEDED")
    assert data["license"]["maxUsesOverride"] == 1


def test_missing_entitlements_are_listed(
    client: CheckedClient, licenses: Licenses, acme: Account
) -> None:
    issued = licenses.issue({"require_fingerprint": False}, policy_entitlements=["pro"])
    data = validated(client, issued, acme.live.signing_key, entitlements=["pro", "enterprise"])
    assert _code(data) == (False, "ENTITLEMENTS_MISSING")
    assert data["metadata"]["missing"] == ["enterprise"]
    ok = validated(client, issued, acme.live.signing_key, entitlements=["pro"])
    assert _code(ok) == (True, "VALID")
    assert "missing" not in ok["metadata"]


def test_fingerprint_codes(client: CheckedClient, licenses: Licenses, acme: Account) -> None:
    issued = licenses.issue({"max_machines": 1})
    signing_key = acme.live.signing_key
    assert _code(validated(client, issued, signing_key)) == (False, "FINGERPRINT_REQUIRED")
    found = validated(client, issued, signing_key, fingerprint=FINGERPRINT)
    assert _code(found) == (False, "FINGERPRINT_NOT_FOUND")
    assert found["machine"] is None
    activate(licenses.ledger, issued, FINGERPRINT)
    full = validated(client, issued, signing_key, fingerprint=OTHER_FINGERPRINT)
    assert _code(full) == (False, "MACHINE_LIMIT_EXCEEDED")
    assert _code(validated(client, issued, signing_key, fingerprint=FINGERPRINT)) == (
        True,
        "VALID",
    )


def test_heartbeat_required_until_the_last_seen_row_says_alive(
    client: CheckedClient, licenses: Licenses, acme: Account
) -> None:
    issued = licenses.issue({"require_heartbeat": True, "heartbeat_interval_minutes": 1})
    long_ago = datetime.now(UTC) - timedelta(minutes=5)
    machine_id = activate(licenses.ledger, issued, FINGERPRINT, at=long_ago)
    data = validated(client, issued, acme.live.signing_key, fingerprint=FINGERPRINT)
    assert _code(data) == (False, "HEARTBEAT_REQUIRED")
    assert data["machine"]["id"] == str(machine_id)
    # A ping updates the last-seen row only (no event): validation must see it.
    with licenses.ledger.reading(issued.tenant_id) as curs:
        curs.execute(
            "INSERT INTO machine_heartbeats (tenant_id, machine_id, license_id,"
            " last_heartbeat_at) VALUES (%s, %s, %s, now())"
            " ON CONFLICT (tenant_id, machine_id) DO UPDATE SET last_heartbeat_at = now()",
            (issued.tenant_id, machine_id, issued.license_id),
        )
    data = validated(client, issued, acme.live.signing_key, fingerprint=FINGERPRINT)
    assert _code(data) == (True, "VALID")


def test_deleted_license_is_not_found(client: CheckedClient, licenses: Licenses) -> None:
    issued = licenses.issue({"require_fingerprint": False})
    delete_license(licenses.ledger, context(issued.tenant_id), issued.license_id)
    assert _code(validated(client, issued, None)) == (False, "NOT_FOUND")


# Request shape.


def test_nonce_is_echoed_under_the_signature(
    client: CheckedClient, licenses: Licenses, acme: Account
) -> None:
    issued = licenses.issue({"require_fingerprint": False})
    data = validated(client, issued, acme.live.signing_key, nonce="n-" + "x" * 126)
    assert data["metadata"]["nonce"] == "n-" + "x" * 126


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"key": ""},
        {"key": "LIC-AAAA", "fingerprint": "short"},
        {"key": "LIC-AAAA", "nonce": "x" * 129},
        {"key": "LIC-AAAA", "entitlements": "pro"},
        {"key": "LIC-AAAA", "unknown": 1},
        {"key": 42},
        [],
    ],
)
def test_malformed_bodies_are_400(client: CheckedClient, body: Any) -> None:
    result = client.post(VALIDATE_KEY, json=body)
    assert result.status_code == 400, result.text
    assert result.json["code"] == "VALIDATION_ERROR"


def test_non_json_body_is_400(client: CheckedClient) -> None:
    result = client.post(VALIDATE_KEY, body="key=x", headers={"Content-Type": "application/json"})
    assert result.status_code == 400


# Environments and tenants.


def test_other_environment_key_is_not_found_for_a_caller_that_names_its_environment(
    client: CheckedClient, ledger: LedgerApplication, config: Config, acme: Account
) -> None:
    issued = issue(
        ledger, config.pepper, acme.test.tenant_id, policy={"require_fingerprint": False}
    )
    result = client.post(
        VALIDATE_KEY, key=acme.live.api_key, json={"key": issued.key, "nonce": "n1"}
    )
    assert result.status_code == 200, result.text
    assert_signed(result, acme.live.signing_key)  # the caller's environment signs
    assert _code(result.json["data"]) == (False, "NOT_FOUND")
    assert result.json["data"]["metadata"]["nonce"] == "n1"
    # Its own environment's key finds it; with no API key the license key alone decides.
    same = client.post(VALIDATE_KEY, key=acme.test.api_key, json={"key": issued.key})
    assert _code(same.json["data"]) == (True, "VALID")
    assert _code(validated(client, issued, acme.test.signing_key)) == (True, "VALID")


def test_an_invalid_bearer_on_validate_key_is_401(client: CheckedClient) -> None:
    result = client.post(VALIDATE_KEY, key="lk_live_nope", json={"key": "LIC-AAAA"})
    assert result.status_code == 401


def test_validate_by_id(
    client: CheckedClient,
    licenses: Licenses,
    ledger: LedgerApplication,
    config: Config,
    acme: Account,
    globex: Account,
) -> None:
    issued = licenses.issue({"max_machines": 1})
    activate(ledger, issued, FINGERPRINT)
    path = validate_path(issued.license_id)
    result = client.post(path, key=acme.live.api_key, json={"fingerprint": FINGERPRINT})
    assert result.status_code == 200, result.text
    assert_signed(result, acme.live.signing_key)
    assert _code(result.json["data"]) == (True, "VALID")
    empty = client.post(path, key=acme.live.api_key)
    assert _code(empty.json["data"]) == (False, "FINGERPRINT_REQUIRED")
    with_key = client.post(path, key=acme.live.api_key, json={"key": issued.key})
    assert with_key.status_code == 400
    assert client.post(path, key=globex.live.api_key, json={}).status_code == 404
    assert client.post(path, key=acme.test.api_key, json={}).status_code == 404
    assert client.post(validate_path(uuid4()), key=acme.live.api_key).status_code == 404
    narrow = create_api_key(
        ledger,
        context(acme.live.tenant_id),
        api_key_id=uuid4(),
        environment="live",
        name="products only",
        scopes=["products:read"],
        expires_at=None,
        pepper=config.pepper,
    ).key
    assert client.post(path, key=narrow, json={}).status_code == 403
    reader = create_api_key(
        ledger,
        context(acme.live.tenant_id),
        api_key_id=uuid4(),
        environment="live",
        name="licenses reader",
        scopes=["licenses:read"],
        expires_at=None,
        pepper=config.pepper,
    ).key
    assert client.post(path, key=reader, json={}).status_code == 200


# What validations write.


def _events(ledger: LedgerApplication, tenant_id: UUID, sql: str, *args: Any) -> list[Any]:
    with ledger.reading(tenant_id) as curs:
        return list(curs.execute(sql, args).fetchall())


def _wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_validation_events_are_batched_into_the_ledger(
    client: CheckedClient, licenses: Licenses, acme: Account
) -> None:
    issued = licenses.issue({"max_machines": 1})
    activate(licenses.ledger, issued, FINGERPRINT)
    validated(client, issued, acme.live.signing_key, fingerprint=FINGERPRINT)
    validated(client, issued, acme.live.signing_key, fingerprint=OTHER_FINGERPRINT)
    validated(client, issued, acme.live.signing_key)
    query = (
        "SELECT event_type, data, metadata FROM events WHERE stream_type = 'validation'"
        " AND data->>'license_id' = %s ORDER BY position"
    )

    def rows() -> list[Any]:
        return _events(licenses.ledger, issued.tenant_id, query, str(issued.license_id))

    _wait_for(lambda: len(rows()) == 3)
    found = rows()
    assert [(r["event_type"], r["data"]["code"]) for r in found] == [
        ("validation.success", "VALID"),
        ("validation.failed", "MACHINE_LIMIT_EXCEEDED"),
        ("validation.failed", "FINGERPRINT_REQUIRED"),
    ]
    assert found[0]["data"]["machine_id"] is not None
    assert found[0]["data"]["request_id"]
    assert found[0]["metadata"]["actor"]["type"] == "system"


def test_first_valid_result_activates_the_license_once(
    client: CheckedClient, licenses: Licenses, acme: Account
) -> None:
    issued = licenses.issue({"require_fingerprint": False})
    validated(client, issued, acme.live.signing_key, entitlements=["nope"])  # invalid
    query = (
        "SELECT count(*) AS n FROM events WHERE stream_id = %s AND event_type = 'license.activated'"
    )
    assert _events(licenses.ledger, issued.tenant_id, query, issued.license_id)[0]["n"] == 0
    for _ in range(3):
        validated(client, issued, acme.live.signing_key)
    assert _events(licenses.ledger, issued.tenant_id, query, issued.license_id)[0]["n"] == 1


# Exactness under concurrency.

USES = 5
PARALLEL = 4 * USES


def _uses_count(ledger: LedgerApplication, issued: IssuedKey) -> int:
    rows = _events(
        ledger,
        issued.tenant_id,
        "SELECT (doc->>'usesCount')::int AS n FROM licenses WHERE id = %s",
        issued.license_id,
    )
    return int(rows[0]["n"])


def test_parallel_threads_get_exactly_max_uses_valid_results(
    client: CheckedClient, licenses: Licenses
) -> None:
    issued = licenses.issue({"max_uses": USES, "require_fingerprint": False})
    plain = falcon.testing.TestClient(client.app)
    start = threading.Barrier(PARALLEL)

    def one(_: int) -> bool:
        start.wait()
        result = plain.simulate_post(VALIDATE_KEY, json={"key": issued.key})
        assert result.status_code == 200, result.text
        valid: bool = result.json["data"]["valid"]
        return valid

    with ThreadPoolExecutor(PARALLEL) as pool:
        outcomes = list(pool.map(one, range(PARALLEL)))
    assert outcomes.count(True) == USES
    assert _uses_count(licenses.ledger, issued) == USES
    activated = _events(
        licenses.ledger,
        issued.tenant_id,
        "SELECT count(*) AS n FROM events WHERE stream_id = %s"
        " AND event_type = 'license.activated'",
        issued.license_id,
    )
    assert activated[0]["n"] == 1


PROCESSES = 4


def _validate_in_process(
    environ: dict[str, str], key: str, count: int, start: Any, results: Any
) -> None:
    """Runs in a fresh (spawned) interpreter: its own app, pool and connections."""
    config = Config.from_env(environ)
    app = create_app(config)
    plain = falcon.testing.TestClient(app)
    start.wait()
    valid = 0
    for _ in range(count):
        result = plain.simulate_post(VALIDATE_KEY, json={"key": key})
        valid += bool(result.status_code == 200 and result.json["data"]["valid"])
    results.put(valid)


def test_parallel_processes_get_exactly_max_uses_valid_results(
    config: Config, licenses: Licenses, database: str
) -> None:
    issued = licenses.issue({"max_uses": USES, "require_fingerprint": False})
    environ = {
        "DATABASE_URL": database,
        "LICENTRIC_MASTER_KEY": _b64(config.master_key),
        "LICENTRIC_RATE_LIMITS": "off",
        "LICENTRIC_DATA_DIR": str(config.data_dir),
    }
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Barrier(PROCESSES)
    results = spawn.Queue()
    processes = [
        spawn.Process(
            target=_validate_in_process,
            args=(environ, issued.key, PARALLEL // PROCESSES, start, results),
        )
        for _ in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    counts = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0
    assert sum(counts) == USES
    assert _uses_count(licenses.ledger, issued) == USES


def _b64(raw: bytes) -> str:
    import base64  # noqa: PLC0415

    return base64.b64encode(raw).decode()


# Migration 0005 and the read model it adds.


def test_migration_backfill_and_the_stream_fallback(
    client: CheckedClient, licenses: Licenses, database: str, acme: Account
) -> None:
    issued = licenses.issue({"require_fingerprint": False})
    assert _code(validated(client, issued, acme.live.signing_key)) == (True, "VALID")
    tenant = acme.live.tenant_id
    migration = dict(migration_files())["0005_validation.sql"]
    backfill = migration[migration.index("DO $$") : migration.index("END\n$$;") + len("END\n$$;")]
    with psycopg.connect(database, autocommit=True) as owner:
        owner.execute(
            "UPDATE tenants SET encrypted_response_secret = NULL WHERE tenant_id = %s", (tenant,)
        )
        owner.execute("UPDATE licenses SET activated_at = NULL WHERE id = %s", (issued.license_id,))
        # With the column empty, signing falls back to the environment stream (once).
        assert _code(validated(client, issued, acme.live.signing_key)) == (True, "VALID")
        owner.execute(backfill)
        row = owner.execute(
            "SELECT t.encrypted_response_secret IS NOT NULL, l.activated_at IS NOT NULL"
            " FROM tenants t JOIN licenses l ON l.tenant_id = t.tenant_id WHERE l.id = %s",
            (issued.license_id,),
        ).fetchone()
    assert row == (True, True)
    assert _code(validated(client, issued, acme.live.signing_key)) == (True, "VALID")
