"""Resolved credentials kept in the facts cache (api/facts_cache.py, api/auth.py) against
real PostgreSQL: an API key used twice costs one lookup; its revocation by this process
refuses the very next request, and a change by any other writer (a DBA's UPDATE of its
scopes or its revocation) is honoured as soon as its notification has arrived (the test
waits for that notification, never for a fixed time)."""

from __future__ import annotations

import psycopg

from api.config import Config
from api.facts_cache import FactsCache
from ledger.crypto import keyed_hash
from tests.integration.api.conftest import Account
from tests.integration.api.conftest import CheckedClient
from tests.integration.api.test_api_keys import KEYS
from tests.integration.api.test_api_keys import PRODUCTS
from tests.integration.api.test_api_keys import create_key
from tests.integration.api.test_facts_cache import wait_for_message


def remembered(cache: FactsCache, client: CheckedClient, key: str, pepper: bytes) -> None:
    """Use the key until the cache holds it (its listener connects on first use)."""
    key_hash = bytes.fromhex(keyed_hash(pepper, key))
    for _ in range(200):
        assert client.get(PRODUCTS, key=key).status_code == 200
        if cache.credential(key_hash) is not None:
            return
    raise AssertionError("the API key was never kept")


def test_a_revocation_here_refuses_the_next_request(
    client: CheckedClient, acme: Account, cache: FactsCache, config: Config
) -> None:
    pepper = config.pepper
    doomed = create_key(client, acme.live.api_key)
    remembered(cache, client, doomed["key"], pepper)

    revoked = client.delete(f"{KEYS}/{doomed['id']}", key=acme.live.api_key)

    assert revoked.status_code in (200, 204), revoked.text
    refused = client.get(PRODUCTS, key=doomed["key"])
    assert refused.status_code == 401
    assert refused.json["code"] == "UNAUTHORIZED"


def test_another_writers_change_is_honoured_once_its_message_arrived(
    client: CheckedClient, acme: Account, cache: FactsCache, config: Config, database: str
) -> None:
    pepper = config.pepper
    key = create_key(client, acme.live.api_key)
    remembered(cache, client, key["key"], pepper)

    with psycopg.connect(database, autocommit=True) as dba:
        dba.execute("SELECT set_config('app.tenant', %s, false)", (acme.live.tenant_id,))
        ticket = cache.ticket()
        dba.execute("UPDATE api_keys SET scopes = '{products:write}' WHERE id = %s", (key["id"],))
        wait_for_message(cache, ticket, "K", key["id"])
        assert client.get(PRODUCTS, key=key["key"]).status_code == 403  # no products:read any more
        created = client.post(PRODUCTS, key=key["key"], json={"name": "X", "code": "x1"})
        assert created.status_code == 201, created.text

        ticket = cache.ticket()
        dba.execute("UPDATE api_keys SET revoked_at = now() WHERE id = %s", (key["id"],))
        wait_for_message(cache, ticket, "K", key["id"])
        refused = client.post(PRODUCTS, key=key["key"], json={"name": "Y", "code": "y1"})
        assert refused.status_code == 401
