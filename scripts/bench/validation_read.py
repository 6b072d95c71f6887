"""The validation read: one SQL function call vs the same read as separate statements.

    python -m scripts.bench.validation_read [--calls 3000]

Measures, on one connection of the app role, single-threaded, per validation of a
license with two active machines:
  function   - `SELECT … FROM validation_facts_by_key($1)` as one autocommit statement
               (what the hot path does: one round trip);
  statements - BEGIN; resolve_credential + set_config; the same read as a plain query;
               COMMIT (four round trips);
and the whole in-process `Validator.by_key` (read + decide + serialize + sign + queue
the event) for scale. Prints mean and p50/p99 in microseconds.
"""

from __future__ import annotations

import argparse
import base64
import secrets
import statistics
import time
from collections.abc import Callable
from datetime import UTC
from datetime import datetime

from api.app import ledger_application
from api.config import Config
from api.services import Services
from api.validator import ValidationRequest
from api.validator import Validator
from ledger.accounts import open_account
from ledger.crypto import keyed_hash
from ledger.domain.codes import EnvironmentName
from scripts.bench._db import drop_database
from scripts.bench._db import fresh_database
from tests.support.licensing import activate
from tests.support.licensing import issue

_PLAIN_READ = """
SELECT l.doc AS license, p.doc AS policy, t.encrypted_response_secret,
    COALESCE((SELECT jsonb_agg(jsonb_build_object('doc', m.doc, 'seen', h.last_heartbeat_at))
              FROM machines m LEFT JOIN machine_heartbeats h
                ON h.tenant_id = m.tenant_id AND h.machine_id = m.id
              WHERE m.tenant_id = l.tenant_id AND m.license_id = l.id AND m.active),
             '[]'::jsonb) AS machines
FROM licenses l JOIN policies p ON p.tenant_id = l.tenant_id AND p.id = l.policy_id
JOIN tenants t ON t.tenant_id = l.tenant_id
WHERE l.id = %s AND NOT l.deleted
"""


def _timed(calls: int, one: Callable[[], object]) -> list[float]:
    for _ in range(min(200, calls)):  # warm plans and caches
        one()
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        one()
        samples.append((time.perf_counter() - started) * 1e6)
    return samples


def _report(name: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    p50 = ordered[len(ordered) // 2]
    p99 = ordered[int(len(ordered) * 0.99)]
    print(f"{name:<12} mean {statistics.fmean(samples):7.0f} us  p50 {p50:7.0f}  p99 {p99:7.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    args = parser.parse_args()
    url = fresh_database()
    try:
        config = Config.from_env(
            {
                "DATABASE_URL": url,
                "LICENTRIC_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
            }
        )
        ledger = ledger_application(config)
        opened = open_account(
            ledger,
            name="bench",
            master_key=config.master_key,
            pepper=config.pepper,
            at=datetime.now(UTC),
        )
        tenant = opened.environments[EnvironmentName.LIVE].tenant_id
        issued = issue(ledger, config.pepper, tenant, policy={"max_machines": 3})
        activate(ledger, issued, "fp-bench-00000001")
        activate(ledger, issued, "fp-bench-00000002")
        key_hash = bytes.fromhex(keyed_hash(config.pepper, issued.key))

        def function() -> object:
            with ledger.autocommit() as curs:
                return curs.execute(
                    "SELECT tenant_id, response_secret, facts FROM validation_facts_by_key(%s)",
                    (key_hash,),
                    prepare=True,
                ).fetchone()

        def statements() -> object:
            with ledger.transaction() as curs:
                row = curs.execute(
                    "SELECT tenant_id, ref_id, set_config('app.tenant', tenant_id::text, true)"
                    " FROM resolve_credential(%s, 'license')",
                    (key_hash,),
                    prepare=True,
                ).fetchone()
                assert row is not None
                return curs.execute(_PLAIN_READ, (row["ref_id"],), prepare=True).fetchone()

        validator = Validator(Services(ledger, config))
        request = ValidationRequest(fingerprint="fp-bench-00000001")

        def whole() -> object:
            return validator.by_key(issued.key, request)

        _report("function", _timed(args.calls, function))
        _report("statements", _timed(args.calls, statements))
        _report("by_key", _timed(args.calls, whole))
        validator.events.close()
        ledger.close()
    finally:
        drop_database(url)


if __name__ == "__main__":
    main()
