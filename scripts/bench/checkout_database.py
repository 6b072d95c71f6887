"""PostgreSQL CPU of a checkout's statements, A/B within one process (migrations 0018, 0019).

    python -m scripts.bench.checkout_database [--calls 3000] [--blocks 10] [--block 300]

On a fresh database with 20 offline licenses, prints the backend CPU (from /proc) of:

1. `checkout_facts` as migration 0018 ships it against its 0016 form (the stream version
   correlated with the license row, so all 16 `events` partitions get an index scan set
   up every call), alternating, `--calls` each, one app-role connection;
2. in-process checkouts (`falcon.testing`, the real app and database) in `--blocks`
   blocks of `--block`, `toast_tuple_target` reset to its default before every other
   block and set to 8160 (0019) before the rest: the checkout's event and row, ~2.1 KB
   each, are compressed-then-TOASTed in the one case and stored in their page in the
   other.

CPU time of the backends rather than wall time: the machine is shared. Alternating
blocks in one process keep the comparison paired. `SELECT 1` is printed for scale.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from importlib import resources
from tempfile import TemporaryDirectory
from typing import Any

import orjson
import psycopg
from falcon import testing

from api.app import create_app
from api.app import ledger_application
from api.services import LazyLedger
from api.services import Services
from ledger.store.factory import APP_ROLE
from scripts.bench._cpu import backend_pids
from scripts.bench._cpu import cpu_seconds
from scripts.bench._db import drop_database
from scripts.bench._db import fresh_database
from scripts.bench._offline import offline_world
from tests.support.offline import OfflineLicense


def _cpu(pids: list[int]) -> float:
    return sum(cpu_seconds(pids).values())


def _old_checkout_facts() -> str:
    sql = (resources.files("ledger") / "migrations" / "0016_checkout_statements.sql").read_text()
    body = sql[sql.index("CREATE FUNCTION checkout_facts") : sql.index("REVOKE ALL ON FUNCTION")]
    return body.replace("FUNCTION checkout_facts(", "FUNCTION checkout_facts_0016(", 1)


def _facts(url: str, tenant: Any, licenses: list[OfflineLicense], calls: int) -> None:
    with psycopg.connect(url, autocommit=True) as owner:
        owner.execute(_old_checkout_facts())
        owner.execute(f"GRANT EXECUTE ON FUNCTION checkout_facts_0016(uuid, uuid) TO {APP_ROLE}")
    statements = {
        "checkout_facts (0018)": "SELECT * FROM checkout_facts(%s, %s)",
        "checkout_facts (0016)": "SELECT * FROM checkout_facts_0016(%s, %s)",
    }
    results: dict[str, list[float]] = {name: [] for name in [*statements, "SELECT 1"]}
    with psycopg.connect(url, autocommit=True, options=f"-c role={APP_ROLE}") as conn:
        pid = conn.info.backend_pid
        for _ in range(3):  # rounds, alternating the two forms
            for name, sql in statements.items():
                ids = [(tenant, lic.license_id) for lic in licenses]
                for i in range(50):  # past the plan cache's custom plans
                    conn.execute(sql, ids[i % len(ids)], prepare=True).fetchall()
                before = _cpu([pid])
                for i in range(calls):
                    conn.execute(sql, ids[i % len(ids)], prepare=True).fetchall()
                results[name].append(1e6 * (_cpu([pid]) - before) / calls)
            before = _cpu([pid])
            for _ in range(calls):
                conn.execute("SELECT 1", prepare=True).fetchall()
            results["SELECT 1"].append(1e6 * (_cpu([pid]) - before) / calls)
    for name, values in results.items():
        print(f"{name:<24} backend CPU {statistics.median(values):6.0f} µs/call"
              f"  (rounds: {', '.join(f'{v:.0f}' for v in values)})")  # fmt: skip


def _toast(url: str, checkout: Callable[[int], None], blocks: int, block: int) -> None:
    with psycopg.connect(url, autocommit=True) as owner:
        tables = [
            row[0]
            for row in owner.execute(
                "SELECT inhrelid::regclass::text FROM pg_inherits"
                " WHERE inhparent = 'events'::regclass"
            )
        ] + ["offline_checkouts"]
        results: dict[bool, list[float]] = {False: [], True: []}
        for n in range(blocks):
            inline = n % 2 == 1
            for table in tables:
                option = (
                    "SET (toast_tuple_target = 8160)" if inline else "RESET (toast_tuple_target)"
                )
                owner.execute(f"ALTER TABLE {table} {option}")
            for i in range(20):
                checkout(i)  # the options reach every connection's relcache
            pids = backend_pids(url)
            before = _cpu(pids)
            for i in range(block):
                checkout(i)
            results[inline].append(1e6 * (_cpu(pids) - before) / block)
    for inline, values in results.items():
        label = "toast_tuple_target 8160" if inline else "toast_tuple_target default"
        print(f"{label:<27} backend CPU {statistics.median(values):6.0f} µs/checkout"
              f"  (blocks: {', '.join(f'{v:.0f}' for v in values)})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--blocks", type=int, default=10)
    parser.add_argument("--block", type=int, default=300)
    args = parser.parse_args()
    url = fresh_database()
    try:
        with TemporaryDirectory() as scratch:
            world = offline_world(url, scratch, pools=1, per_pool=20)
            config, live, licenses = world.config, world.live, world.pools[0]
            _facts(url, live.tenant_id, licenses, args.calls)

            # A ledger this script closes: the app's own would outlive the database.
            serving = ledger_application(config)
            app = create_app(config, services=Services(LazyLedger(lambda: serving), config))
            client = testing.TestClient(app)
            headers = {"Authorization": f"Bearer {live.api_key}"}

            def checkout(i: int) -> None:
                lic = licenses[i % len(licenses)]
                result = client.simulate_post(
                    f"/api/v1/licenses/{lic.license_id}/checkout",
                    body=orjson.dumps({"fingerprint": lic.fingerprint, "ttl": 86400}),
                    headers={**headers, "Content-Type": "application/json"},
                )
                assert result.status_code == 200, result.text

            _toast(url, checkout, args.blocks, args.block)
            if app.facts_cache is not None:
                app.facts_cache.close()
            serving.close()
    finally:
        drop_database(url)


if __name__ == "__main__":
    main()
