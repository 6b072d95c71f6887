"""The official SDK against a real server: `validate`, with every response verified.

`licentric.Licentric(..., signing_key=…)` checks `X-Signature` on every validation
response. The one answer it cannot verify is NOT_FOUND for an unknown key: the request
carries no credential, so no environment (and no signing key) can be named for it, and
the server leaves it unsigned; the SDK then raises SignatureVerificationError, which is
failing closed (docs/validation.md). An SDK without a signing key reads it as NOT_FOUND.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from licentric import Licentric
from licentric.exceptions import SignatureVerificationError

from api.config import Config
from ledger.accounts import OpenedEnvironment
from ledger.application import LedgerApplication
from tests.support.licensing import issue
from tests.support.processes import ServerProcess
from tests.support.processes import running_server

FINGERPRINT = "fp-e2e-" + secrets.token_hex(8)


@pytest.fixture
def sdk(server: ServerProcess, live: OpenedEnvironment) -> Iterator[Callable[..., Licentric]]:
    """Factory of SDK clients (closed after the test): verifying ones by default."""
    made: list[Licentric] = []

    def make(*, verify: bool = True) -> Licentric:
        client = Licentric(
            live.api_key,
            base_url=server.base_url,
            signing_key=live.signing_key if verify else None,
            verify_signature=verify,
            cache_ttl=0,  # every call reaches the server
            max_retries=0,
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def test_sdk_validates_through_activation(
    sdk: Callable[..., Licentric],
    ledger: LedgerApplication,
    config: Config,
    live: OpenedEnvironment,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="licentric")  # its "verification off" warning
    client = sdk()
    issued = issue(ledger, config.pepper, live.tenant_id, policy={"max_machines": 2})

    unverified = sdk(verify=False).validate("LIC-AAAA-BBBB-CCCC-DDDD", FINGERPRINT)
    assert (unverified.valid, unverified.code, unverified.license) == (False, "NOT_FOUND", None)
    with pytest.raises(SignatureVerificationError):
        client.validate("LIC-AAAA-BBBB-CCCC-DDDD", FINGERPRINT)

    required = client.validate(issued.key)
    assert (required.valid, required.code) == (False, "FINGERPRINT_REQUIRED")
    assert required.license is not None
    assert required.license.id == str(issued.license_id)

    unknown = client.validate(issued.key, FINGERPRINT)
    assert (unknown.valid, unknown.code, unknown.machine) == (False, "FINGERPRINT_NOT_FOUND", None)

    machine = client.activate(issued.key, FINGERPRINT, name="e2e box")
    result = client.validate(issued.key, FINGERPRINT)
    assert (result.valid, result.code) == (True, "VALID")
    assert result.machine is not None
    assert (result.machine.id, result.machine.fingerprint) == (machine.id, FINGERPRINT)
    assert result.machine.name == "e2e box"
    assert result.license is not None
    assert result.license.status == "active"


def test_validation_events_reach_the_ledger(
    sdk: Callable[..., Licentric],
    ledger: LedgerApplication,
    config: Config,
    live: OpenedEnvironment,
) -> None:
    issued = issue(ledger, config.pepper, live.tenant_id, policy={"require_fingerprint": False})
    client = sdk()
    for _ in range(3):
        assert client.validate(issued.key).valid
    _wait_for_events(ledger, live, issued.license_id, 3)


def _count_events(ledger: LedgerApplication, env: OpenedEnvironment, license_id: object) -> int:
    with ledger.reading(env.tenant_id) as curs:
        row = curs.execute(
            "SELECT count(*) AS n FROM events WHERE event_type = 'validation.success'"
            " AND data->>'license_id' = %s",
            (str(license_id),),
        ).fetchone()
    assert row is not None
    return int(row["n"])


def _wait_for_events(
    ledger: LedgerApplication, env: OpenedEnvironment, license_id: object, count: int
) -> None:
    deadline = time.monotonic() + 10
    while (found := _count_events(ledger, env, license_id)) < count:
        assert time.monotonic() < deadline, f"{found} of {count} events after 10 s"
        time.sleep(0.05)
    assert found == count


def test_a_graceful_stop_flushes_the_queued_events(
    environ: dict[str, str],
    ledger: LedgerApplication,
    config: Config,
    live: OpenedEnvironment,
    tmp_path: Path,
) -> None:
    """With a flush interval longer than the test, only the shutdown flush can write them."""
    issued = issue(ledger, config.pepper, live.tenant_id, policy={"require_fingerprint": False})
    slow = {**environ, "LICENTRIC_VALIDATION_FLUSH_MS": "600000"}
    with running_server(slow, log_dir=tmp_path, workers=2) as server:
        with requests.Session() as http:
            for _ in range(20):
                answer = http.post(
                    server.url("/api/v1/licenses/validate-key"), json={"key": issued.key}
                )
                assert answer.json()["data"]["valid"]
        assert _count_events(ledger, live, issued.license_id) == 0
        assert server.stop() == 0
    assert _count_events(ledger, live, issued.license_id) == 20
