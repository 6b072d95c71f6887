"""validate-key's fast path (api/validate_fast_path.py) and remembered answers
(api/answers.py) against real PostgreSQL: the same answers as Falcon's request cycle,
everything unusual declined to it, failures in the one envelope, and a reused answer
never outliving the instant its decision names."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import falcon.testing
import orjson
import pytest

from api.app import LedgerApp
from api.app import create_app
from api.config import Config
from api.facts_cache import FactsCache
from api.services import Services
from api.validate_fast_path import ValidateKeyFastPath
from api.validation_events import close_all
from ledger.application import LedgerApplication
from projections.wire import iso_ms
from tests.integration.api.conftest import Account
from tests.integration.api.conftest import CheckedClient
from tests.integration.api.conftest import Licenses
from tests.integration.api.test_validation import FINGERPRINT
from tests.integration.api.test_validation import VALIDATE_KEY
from tests.integration.api.test_validation import assert_signed
from tests.support.licensing import activate

OTHER = "fp-not-a-machine-0009"


pytestmark = pytest.mark.usefixtures("validation_events_flushed")


@pytest.fixture(scope="module")
def falcon_only(config: Config, ledger: LedgerApplication) -> CheckedClient:
    """The same app with the fast path taken out: Falcon's request cycle for everything."""
    app = create_app(config, services=Services(ledger, config))
    app.fast_path = None
    return CheckedClient(app)


def fast_path_of(client: CheckedClient) -> ValidateKeyFastPath:
    app = client.app
    assert isinstance(app, LedgerApp)
    assert app.fast_path is not None
    return app.fast_path


def comparable(result: falcon.testing.Result) -> tuple[int, dict[str, Any], list[str]]:
    """Status, body without the time, header names without the per-request id values."""
    body = result.json
    if "data" in body:
        body["data"]["metadata"].pop("ts")
    body.pop("requestId", None)
    return result.status_code, body, sorted(name.lower() for name in result.headers)


@pytest.mark.parametrize(
    "body",
    [
        {"fingerprint": FINGERPRINT},
        {"fingerprint": FINGERPRINT, "nonce": "n-123", "entitlements": ["pro"]},
        {"fingerprint": FINGERPRINT, "entitlements": ["pro", "nope", "nope"], "nonce": "x"},
        {"fingerprint": OTHER},
        {},
        {"key": "NOPE-AAAA-BBBB-CCCC-DDDD"},
    ],
    ids=["valid", "nonce-entitlements", "missing", "not-a-machine", "no-fingerprint", "unknown"],
)
def test_the_fast_path_answers_as_falcon_does(
    client: CheckedClient,
    falcon_only: CheckedClient,
    licenses: Licenses,
    acme: Account,
    body: dict[str, Any],
) -> None:
    issued = licenses.issue(policy_entitlements=["pro"])
    activate(licenses.ledger, issued, FINGERPRINT)
    request = {"key": issued.key, **body}
    answers = []
    for one in (client, falcon_only, client, falcon_only):  # the repeats: remembered answers
        result = one.post(VALIDATE_KEY, json=request, headers={"X-Request-Id": "req-42"})
        assert result.headers["X-Request-Id"] == "req-42"
        if "key" not in body:
            assert_signed(result, acme.live.signing_key)
        answers.append(comparable(result))
    assert answers[0] == answers[1] == answers[2] == answers[3]


def test_what_the_fast_path_does_not_serve_is_answered_by_falcon(
    client: CheckedClient, licenses: Licenses, acme: Account
) -> None:
    issued = licenses.issue()
    activate(licenses.ledger, issued, FINGERPRINT)
    good = {"key": issued.key, "fingerprint": FINGERPRINT}
    # Bad bodies: Falcon's 400s, with their wording and details.
    for raw, content_type in [
        (b"{not json", "application/json"),
        (orjson.dumps({**good, "extra": 1}), "application/json"),
        (orjson.dumps({**good, "fingerprint": "x\u0000" * 8}), "application/json"),
        (orjson.dumps(good), "text/plain"),
    ]:
        result = client.post(VALIDATE_KEY, body=raw, headers={"Content-Type": content_type})
        assert result.status_code == 400, result.text
        assert result.json["code"] == "VALIDATION_ERROR"
        assert result.json["requestId"] == result.headers["X-Request-Id"]
    unknown = client.post(VALIDATE_KEY, json={**good, "extra": 1})
    assert unknown.json["details"]["issues"] == [{"path": ["extra"], "message": "unknown field"}]
    # A Bearer key scopes the lookup (and signs NOT_FOUND): Falcon's path.
    scoped = client.post(VALIDATE_KEY, json=good, key=acme.test.api_key)
    assert scoped.json["data"]["code"] == "NOT_FOUND"
    assert_signed(scoped, acme.test.signing_key)
    # A body past the fast path's size: still served, by Falcon.
    padded = b" " * 20_000 + orjson.dumps(good)  # whitespace is JSON too
    big = client.post(VALIDATE_KEY, body=padded, headers={"Content-Type": "application/json"})
    assert big.status_code == 200
    assert big.json["data"]["code"] == "VALID"


def test_a_failure_on_the_fast_path_is_the_error_envelope(tmp_path: Any) -> None:
    down = Config(
        database_url="postgresql://unused@127.0.0.1:1/unused",
        redis_url=None,
        data_dir=tmp_path,
        master_key=bytes(32),
        rate_limits_enabled=False,
    )
    client = falcon.testing.TestClient(create_app(down))
    result = client.simulate_post(VALIDATE_KEY, json={"key": "ABCD-AAAA-BBBB-CCCC-DDDD"})
    assert result.status_code == 503
    assert result.headers["Retry-After"] == "1"
    assert result.json["code"] == "UNAVAILABLE"
    assert result.json["requestId"] == result.headers["X-Request-Id"]


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clocked(config: Config, ledger: LedgerApplication) -> Iterator[tuple[CheckedClient, Clock]]:
    clock = Clock()
    yield CheckedClient(create_app(config, services=Services(ledger, config, clock=clock))), clock
    close_all()


def validate_until_remembered(
    client: CheckedClient, key: str, signing_key: str, expected: str
) -> Callable[[], dict[str, Any]]:
    """Validate until the answer is reused from the cache entry; return the validation."""
    cache: FactsCache = fast_path_of(client)._validator.cache

    def validate() -> dict[str, Any]:
        result = client.post(VALIDATE_KEY, json={"key": key, "fingerprint": FINGERPRINT})
        assert result.status_code == 200
        assert_signed(result, signing_key)
        data: dict[str, Any] = result.json["data"]
        return data

    for _ in range(200):
        hits = cache.hits
        assert validate()["code"] == expected
        if cache.hits > hits and validate()["code"] == expected:
            return validate
    raise AssertionError("never answered from memory")


@pytest.mark.parametrize("deadline", ["expiry", "heartbeat"])
def test_a_remembered_answer_ends_at_the_instant_its_decision_names(
    clocked: tuple[CheckedClient, Clock], licenses: Licenses, acme: Account, deadline: str
) -> None:
    client, clock = clocked
    start = clock.now
    if deadline == "expiry":
        issued = licenses.issue(expires_at=start + timedelta(seconds=60))
        changed = "EXPIRED"
    else:
        issued = licenses.issue({"require_heartbeat": True, "heartbeat_interval_minutes": 1})
        changed = "HEARTBEAT_REQUIRED"
    activate(licenses.ledger, issued, FINGERPRINT, at=start)
    validate = validate_until_remembered(client, issued.key, acme.live.signing_key, "VALID")
    clock.now = start + timedelta(seconds=59, microseconds=999_000)
    again = validate()
    assert again["code"] == "VALID"
    assert again["metadata"]["ts"] == iso_ms(clock.now)  # the body is of this moment
    clock.now = start + timedelta(seconds=60)
    assert validate()["code"] == changed
    clock.now = start + timedelta(seconds=30)  # a clock that went back: decided afresh
    assert validate()["code"] == "VALID"


@pytest.mark.parametrize("store", ["memory", "redis"])
def test_rate_limits_count_each_request_once_whichever_path_serves_it(
    config: Config,
    ledger: LedgerApplication,
    licenses: Licenses,
    redis_url: str,
    store: str,
) -> None:
    limited = dataclasses.replace(
        config,
        rate_limits_enabled=True,
        rate_limit_validate="20/minute",
        redis_url=redis_url if store == "redis" else None,
    )
    client = CheckedClient(create_app(limited, services=Services(ledger, limited)))
    issued = licenses.issue()
    activate(licenses.ledger, issued, FINGERPRINT)
    # A client address of its own: Redis keeps counts across tests.
    peer = f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250)}"
    good = orjson.dumps({"key": issued.key, "fingerprint": FINGERPRINT})
    bad = orjson.dumps({"key": issued.key, "extra": True})  # declined: Falcon counts it
    results = [
        client.post(
            VALIDATE_KEY,
            body=bad if i % 5 == 0 else good,
            headers={"Content-Type": "application/json"},
            remote_addr=peer,
        )
        for i in range(40)
    ]
    statuses = [r.status_code for r in results]
    assert statuses[:20].count(429) == 0
    assert statuses[20:] == [429] * 20
    assert sorted(set(statuses[:20])) == [200, 400]
    served = results[1]
    assert served.headers["X-RateLimit-Limit"] == "20"
    assert served.headers["X-RateLimit-Remaining"] == "18"
    refused = results[-1]
    assert refused.json["code"] == "RATE_LIMITED"
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.json["requestId"] == refused.headers["X-Request-Id"]
