"""The validation facts cache (api/facts_cache.py) against real PostgreSQL: a repeated
validation is served from memory; a change made by this process is seen by the very next
validation, and a change by any other writer as soon as its notification has arrived
(the test waits for that notification, never for a fixed time)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from api.config import Config
from api.facts_cache import FactsCache
from ledger.application import LedgerApplication
from ledger.commands.licenses import reinstate_license
from ledger.commands.licenses import suspend_license
from ledger.commands.machines import deactivate_machine
from ledger.commands.signing_keys import rotate_response_secret
from tests.integration.api.conftest import Account
from tests.integration.api.conftest import CheckedClient
from tests.integration.api.conftest import Licenses
from tests.integration.api.test_validation import FINGERPRINT
from tests.integration.api.test_validation import VALIDATE_KEY
from tests.integration.api.test_validation import assert_signed
from tests.support.licensing import IssuedKey
from tests.support.licensing import activate
from tests.support.licensing import context

pytestmark = pytest.mark.usefixtures("validation_events_flushed")


def code_of(client: CheckedClient, issued: IssuedKey, signing_key: str, **body: Any) -> str:
    result = client.post(VALIDATE_KEY, json={"key": issued.key, **body})
    assert result.status_code == 200, result.text
    assert_signed(result, signing_key)
    code: str = result.json["data"]["code"]
    return code


def served_from_memory(
    cache: FactsCache, validate: Callable[[], str], expected: str, attempts: int = 200
) -> None:
    """Validate until an answer came from the cache (the listener connects after the
    first use), checking every answer on the way."""
    for _ in range(attempts):
        hits = cache.hits
        assert validate() == expected
        if cache.hits > hits:
            return
    raise AssertionError("never served from memory")


def wait_for_message(
    cache: FactsCache, ticket: int, kind: str, one: str, timeout: float = 10.0
) -> None:
    deadline = time.monotonic() + timeout
    while not cache.heard_since(ticket, kind, one):
        assert time.monotonic() < deadline, f"no {kind}|{one} notification arrived"
        time.sleep(0.001)


def test_every_change_is_seen_by_the_next_validation(
    client: CheckedClient,
    config: Config,
    ledger: LedgerApplication,
    new_account: Callable[[], Account],
    cache: FactsCache,
    database: str,
) -> None:
    # An account of its own: its response secret is rotated below.
    acme = new_account()
    licenses = Licenses(ledger, config, acme.live)
    issued = licenses.issue()
    machine_id = activate(licenses.ledger, issued, FINGERPRINT)
    signing_key = acme.live.signing_key
    ctx = context(issued.tenant_id)
    master_key = config.master_key

    def validate() -> str:
        return code_of(client, issued, signing_key, fingerprint=FINGERPRINT)

    served_from_memory(cache, validate, "VALID")
    # A command of this process.
    suspend_license(licenses.ledger, ctx, issued.license_id)
    assert validate() == "SUSPENDED"
    reinstate_license(licenses.ledger, ctx, issued.license_id)
    served_from_memory(cache, validate, "VALID")

    # A writer that is not the API: a DBA's UPDATE of the policy, as the table owner.
    # Its message reaches this process asynchronously: wait for it, then validate.
    ticket = cache.ticket()
    with psycopg.connect(database, autocommit=True) as dba:
        dba.execute("SELECT set_config('app.tenant', %s, false)", (str(issued.tenant_id),))
        dba.execute(
            "UPDATE policies SET doc = jsonb_set(doc, '{requireFingerprint}', 'true')"
            " WHERE id = %s",
            (issued.policy_id,),
        )
    wait_for_message(cache, ticket, "P", str(issued.policy_id))
    assert code_of(client, issued, signing_key) == "FINGERPRINT_REQUIRED"
    served_from_memory(cache, validate, "VALID")

    # The environment's response-signing secret.
    rotated = rotate_response_secret(licenses.ledger, ctx, master_key=master_key)
    assert code_of(client, issued, rotated.secret, fingerprint=FINGERPRINT) == "VALID"
    served_from_memory(
        cache, lambda: code_of(client, issued, rotated.secret, fingerprint=FINGERPRINT), "VALID"
    )

    # A machine leaving.
    deactivate_machine(licenses.ledger, ctx, license_id=issued.license_id, machine_id=machine_id)
    assert (
        code_of(client, issued, rotated.secret, fingerprint=FINGERPRINT) == "FINGERPRINT_NOT_FOUND"
    )


def test_a_lost_listener_drops_the_cache_until_it_is_back(
    client: CheckedClient,
    licenses: Licenses,
    acme: Account,
    cache: FactsCache,
    database: str,
) -> None:
    issued = licenses.issue()
    activate(licenses.ledger, issued, FINGERPRINT)
    signing_key = acme.live.signing_key

    def validate() -> str:
        return code_of(client, issued, signing_key, fingerprint=FINGERPRINT)

    served_from_memory(cache, validate, "VALID")
    with psycopg.connect(database, autocommit=True) as dba:
        killed = dba.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE query = 'LISTEN licentric_facts'"
        ).fetchone()
    assert killed is not None
    assert killed[0] >= 1
    # Changed while nobody listens: no message will ever say so.
    suspend_license(licenses.ledger, context(issued.tenant_id), issued.license_id)
    assert validate() == "SUSPENDED"
    reinstate_license(licenses.ledger, context(issued.tenant_id), issued.license_id)
    served_from_memory(cache, validate, "VALID", attempts=2000)


def test_licenses_with_max_uses_are_never_cached(
    client: CheckedClient, licenses: Licenses, acme: Account, cache: FactsCache
) -> None:
    issued = licenses.issue({"max_uses": 3, "require_fingerprint": False})
    hits = cache.hits
    codes = [code_of(client, issued, acme.live.signing_key) for _ in range(5)]
    assert codes == ["VALID"] * 3 + ["USAGE_LIMIT_EXCEEDED"] * 2
    assert cache.hits == hits
