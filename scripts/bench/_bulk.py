"""Many licenses quickly, for read-path benchmarks: one made by the commands, cloned by COPY.

A template license is made the real way (product, policy, license and one active machine
through the ledger's commands, then one validation so `license.activated` is recorded),
so its read-model rows are exactly what the projections write. Then, as the database
owner, its rows in every table the validation read touches (`licenses`, `machines`,
`machine_heartbeats`, `credential_lookup`; policy and tenant are shared) are cloned
with COPY, each clone with its own license id, machine id, key hash and fingerprint.

The clones have no events: this is legitimate only for benchmarks of the read path
(validate-key reads the read models and never the events of a license that needs no
command), and the benchmarks say so in their output. A handful of clones (`sample`) get
real license keys; the rest get random key hashes, indistinguishable in the index.
"""

from __future__ import annotations

import base64
import contextlib
import os
import random
import time
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from uuid import UUID
from uuid import uuid4

import psycopg

from api.app import ledger_application
from api.config import Config
from api.services import Services
from api.validator import ValidationRequest
from api.validator import Validator
from ledger.accounts import open_account
from ledger.crypto import keyed_hash
from ledger.crypto import new_license_key
from ledger.domain.codes import EnvironmentName
from ledger.domain.templates import PolicySettings
from tests.support.licensing import activate
from tests.support.licensing import issue

# (table, the template rows) — every table `validation_facts_by_key` reads per license.
_CLONED = (
    ("licenses", "id = %(license)s"),
    ("machines", "license_id = %(license)s"),
    ("machine_heartbeats", "license_id = %(license)s"),
    ("credential_lookup", "ref_id = %(license)s AND kind = 'license'"),
)
_CHUNK = 5_000
TEMPLATE_FINGERPRINT = "bench-template-fingerprint-0000"


@dataclass(frozen=True)
class KeyedLicense:
    key: str
    fingerprint: str  # of its one active machine


@dataclass(frozen=True)
class BenchAccount:
    tenant_id: UUID
    api_key: str
    key_prefix: str
    template: KeyedLicense
    template_license_id: UUID


def new_master_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def open_bench_account(
    url: str, master_key: str, policy: PolicySettings | None = None
) -> BenchAccount:
    """An account, and in its live environment one license with one active machine,
    validated once (so later valid answers run no command)."""
    config = Config.from_env({"DATABASE_URL": url, "LICENTRIC_MASTER_KEY": master_key})
    ledger = ledger_application(config)
    try:
        opened = open_account(
            ledger,
            name="bench",
            master_key=config.master_key,
            pepper=config.pepper,
            at=datetime.now(UTC),
        )
        live = opened.environments[EnvironmentName.LIVE]
        issued = issue(ledger, config.pepper, live.tenant_id, policy=policy)
        activate(ledger, issued, TEMPLATE_FINGERPRINT)
        validator = Validator(Services(ledger, config))
        answer = validator.by_key(issued.key, ValidationRequest(fingerprint=TEMPLATE_FINGERPRINT))
        validator.events.close()
        assert b'"VALID"' in answer.body, answer.body
        return BenchAccount(
            tenant_id=live.tenant_id,
            api_key=live.api_key,
            key_prefix=issued.key.split("-", 1)[0],
            template=KeyedLicense(issued.key, TEMPLATE_FINGERPRINT),
            template_license_id=issued.license_id,
        )
    finally:
        ledger.close()  # sends the pending log wake-ups first


def clone_licenses(
    url: str,
    account: BenchAccount,
    master_key: str,
    count: int,
    *,
    sample: int,
    seed: int = 1,
    log: Callable[[str], None] = lambda _: None,
) -> list[KeyedLicense]:
    """Add `count` clones of the template license; return `sample` of them (spread
    uniformly over the insertion order) with their real keys."""
    pepper = Config.from_env({"DATABASE_URL": url, "LICENTRIC_MASTER_KEY": master_key}).pepper
    rng = random.Random(seed)
    keyed_at = set(rng.sample(range(count), min(sample, count)))
    license_ids = [str(uuid4()) for _ in range(count)]
    machine_ids = [str(uuid4()) for _ in range(count)]
    fingerprints = [f"bench-fp-{rng.getrandbits(64):016x}" for _ in range(count)]
    hashes: list[str] = []
    keyed: list[KeyedLicense] = []
    for i in range(count):
        if i in keyed_at:
            key = new_license_key(account.key_prefix)
            hashes.append(keyed_hash(pepper, key))
            keyed.append(KeyedLicense(key, fingerprints[i]))
        else:
            hashes.append(os.urandom(32).hex())
    with psycopg.connect(url, autocommit=True) as conn:
        template = _template_ids(conn, account)
        columns = (license_ids, machine_ids, hashes, fingerprints)
        for table, where in _CLONED:
            text = _copy_out(conn, table, where, account.template_license_id)
            if not text:
                continue
            pattern = _pattern(text, template)
            started = time.perf_counter()
            with (
                _indexes_rebuilt_after(conn, table),
                conn.cursor().copy(f"COPY {table} FROM STDIN") as copy,
            ):
                for chunk in _chunks(pattern, columns, count):
                    copy.write(chunk)
            log(f"  {table}: {count:,} rows in {time.perf_counter() - started:.1f} s")
        # What a long-running database looks like: statistics, visibility map, hint bits.
        conn.execute("VACUUM ANALYZE licenses, machines, machine_heartbeats, credential_lookup")
    rng.shuffle(keyed)
    return keyed


@contextlib.contextmanager
def _indexes_rebuilt_after(
    conn: psycopg.Connection[tuple[object, ...]], table: str
) -> Iterator[None]:
    """Drop `table`'s indexes (primary key included), and build them again afterwards:
    one sorted build per index is several times faster than a million random inserts."""
    constraints = conn.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = %s::regclass AND contype IN ('p', 'u')",
        (table,),
    ).fetchall()
    indexes = conn.execute(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i"
        " WHERE i.indrelid = %s::regclass AND NOT EXISTS"
        " (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
        (table,),
    ).fetchall()
    for name, _ in constraints:
        conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _ in indexes:
        conn.execute(f"DROP INDEX {name}")
    try:
        yield
    finally:
        conn.execute("SET maintenance_work_mem = '256MB'")
        for name, definition in constraints:
            conn.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        for _, definition in indexes:
            conn.execute(definition)


def _template_ids(conn: psycopg.Connection[tuple[object, ...]], account: BenchAccount) -> list[str]:
    """The template's license id, machine id, key hash (hex) and fingerprint: the tokens
    each clone replaces in the template's COPY text."""
    row = conn.execute(
        "SELECT l.id, m.id, encode(l.key_hash, 'hex'), m.fingerprint FROM licenses l"
        " JOIN machines m ON m.tenant_id = l.tenant_id AND m.license_id = l.id"
        " WHERE l.id = %s AND m.active",
        (account.template_license_id,),
    ).fetchone()
    assert row is not None, "the template license has no active machine"
    return [str(row[0]), str(row[1]), str(row[2]), str(row[3])]


def _copy_out(
    conn: psycopg.Connection[tuple[object, ...]], table: str, where: str, license_id: UUID
) -> str:
    query = f"COPY (SELECT * FROM {table} WHERE {where}) TO STDOUT"
    with conn.cursor().copy(query, {"license": license_id}) as copy:
        return b"".join(bytes(block) for block in copy).decode()


def _pattern(text: str, tokens: list[str]) -> str:
    """The template's COPY text as a str.format pattern: {0} license id, {1} machine id,
    {2} key hash hex, {3} fingerprint."""
    pattern = text.replace("{", "{{").replace("}", "}}")
    for index, token in enumerate(tokens):
        pattern = pattern.replace(token, "{" + str(index) + "}")
    return pattern


def _chunks(pattern: str, columns: tuple[list[str], ...], count: int) -> Iterator[str]:
    fill = pattern.format
    ids, machines, hashes, fingerprints = columns
    for start in range(0, count, _CHUNK):
        end = min(count, start + _CHUNK)
        yield "".join(
            fill(ids[i], machines[i], hashes[i], fingerprints[i]) for i in range(start, end)
        )
