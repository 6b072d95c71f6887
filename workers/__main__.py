"""``python -m workers``: the worker process (started by ``licentric worker``).

A composition root: reads the environment the CLI resolved (``DATABASE_URL`` is set,
embedded or not), wires the loops and runs them until SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from datetime import UTC
from datetime import datetime

from ledger.application import LedgerApplication
from ledger.store.dsn import redact_url
from projections.inline import InlineProjections
from workers.analytics import analytics_loops
from workers.logs import configure_logging
from workers.master_key import MasterKeyMissingError
from workers.master_key import master_key_from_env
from workers.resigner import resigner_loops
from workers.runner import Loop
from workers.runner import Runner
from workers.timers import timer_loops
from workers.webhooks import webhook_loops

_log = logging.getLogger("licentric.worker")


def utc_now() -> datetime:
    return datetime.now(UTC)


def build_loops(database_url: str) -> list[Loop]:
    """The loops this process runs; webhooks, timers and the re-signer plug in here."""
    ledger = LedgerApplication(database_url, pool_size=2, projector=InlineProjections())
    loops: list[Loop] = []
    loops += timer_loops(ledger, clock=utc_now)
    loops += analytics_loops(ledger)
    try:
        master_key = master_key_from_env(os.environ)
    except MasterKeyMissingError as e:
        _log.error("no master key: offline files are not re-signed, webhooks not sent: %s", e)
    else:
        loops += resigner_loops(ledger, master_key=master_key, clock=utc_now)
        loops += webhook_loops(database_url, master_key=master_key, environ=os.environ)
    return loops


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="licentric worker", description=__doc__)
    parser.add_argument("--once", action="store_true", help="run one pass, then exit")
    args = parser.parse_args(argv)

    configure_logging(os.environ.get("LICENTRIC_LOG_LEVEL", "info"))
    database_url = os.environ.get("DATABASE_URL", "").strip()
    if not database_url:
        _log.error("DATABASE_URL is not set: start workers with `licentric worker`")
        return 2
    loops = build_loops(database_url)
    _log.info(
        "worker starting, database: %s",
        redact_url(database_url),
        extra={"loops": [loop.name for loop in loops], "once": args.once},
    )
    runner = Runner(loops)
    runner.install_signal_handlers()
    runner.run(once=args.once)
    _log.info("worker stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
