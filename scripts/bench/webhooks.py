"""Webhook delivery: throughput with 1 and 2 workers, and event -> delivery latency.

- throughput: a backlog of `--licenses` x `--changes` license events is written first,
  then `licentric worker` processes (1, then 2) deliver it to a local receiver that
  answers 200 at once; deliveries/s = backlog / (last receipt - first receipt).
- latency: one worker running, events written at a steady `--rate` per second for
  `--seconds`; latency = receipt time - the event's `createdAt` (the command's time).
  Target: p99 < 1 s at 100 events/s.

    python scripts/bench/webhooks.py [--licenses 100] [--changes 20] [--rate 100]
                                     [--seconds 20]
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from uuid import UUID
from uuid import uuid4

sys.path.insert(0, str(Path(__file__).resolve().parent))

import orjson
from _db import drop_database
from _db import fresh_database

from ledger.accounts import open_account
from ledger.application import LedgerApplication
from ledger.commands import catalogue
from ledger.commands import licenses
from ledger.commands import webhooks
from ledger.commands.base import Actor
from ledger.commands.base import CommandContext
from ledger.commands.base import change
from ledger.domain.codes import EnvironmentName
from ledger.domain.license import License
from ledger.store.recorder import ConcurrencyConflictError
from projections.inline import InlineProjections

MASTER_KEY = base64.b64encode(secrets.token_bytes(32)).decode()
PEPPER = secrets.token_bytes(32)


class Receiver:
    """Answers 200 at once and notes when each message arrived."""

    def __init__(self) -> None:
        self.arrivals: dict[str, list[tuple[float, str, str]]] = {}
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                arrived = time.time()
                envelope = orjson.loads(body)
                with receiver._lock:
                    receiver.arrivals.setdefault(self.path, []).append(
                        (arrived, envelope["id"], envelope["createdAt"])
                    )
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def count(self, path: str) -> int:
        with self._lock:
            return len({a[1] for a in self.arrivals.get(path, [])})

    def of(self, path: str) -> list[tuple[float, str, str]]:
        with self._lock:
            return list(self.arrivals.get(path, []))


class Tenant:
    def __init__(self, app: LedgerApplication, receiver: Receiver, name: str) -> None:
        opened = open_account(
            app, name=name, master_key=base64.b64decode(MASTER_KEY), pepper=PEPPER,
            at=datetime.now(UTC),
        )  # fmt: skip
        self.app = app
        self.tenant_id = opened.environments[EnvironmentName.LIVE].tenant_id
        self.product = catalogue.create_product(
            app, self.ctx(), product_id=uuid4(), name="P", code="p"
        ).id
        self.policy = catalogue.create_policy(
            app, self.ctx(), policy_id=uuid4(), product_id=self.product, name="Std"
        ).id
        self.path = f"/{name}"
        webhooks.create_webhook_endpoint(
            app, self.ctx(), endpoint_id=uuid4(), url=receiver.url(self.path),
            events=["license.*"], master_key=base64.b64decode(MASTER_KEY),
            destinations=webhooks.DestinationPolicy(allow_private=True),
        )  # fmt: skip

    def ctx(self) -> CommandContext:
        return CommandContext(self.tenant_id, Actor("operator"), datetime.now(UTC))

    def new_license(self) -> UUID:
        license_id = uuid4()
        licenses.issue_license(
            self.app, self.ctx(), license_id=license_id, product_id=self.product,
            policy_id=self.policy, pepper=PEPPER, name="v0",
        )  # fmt: skip
        return license_id

    def rename(self, license_id: UUID, times: int = 1) -> None:
        ctx = self.ctx()

        def decide(license_: License) -> None:
            for n in range(times):
                license_.update(name=f"n{n}-{secrets.token_hex(2)}", at=ctx.at)

        # Writers of the latency phase may hit one license at once: a command that runs
        # out of conflict retries is run again, never silently dropped (the phase waits
        # for exactly as many deliveries as it wrote).
        while True:
            try:
                change(self.app, ctx, License, license_id, decide)
            except ConcurrencyConflictError:
                continue
            return


def start_workers(database_url: str, count: int) -> list[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "LICENTRIC_MASTER_KEY": MASTER_KEY,
        "LICENTRIC_WEBHOOK_ALLOW_PRIVATE": "true",
        "LICENTRIC_LOG_LEVEL": "warning",
    }
    return [subprocess.Popen([sys.executable, "-m", "workers"], env=env) for _ in range(count)]


def stop(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.wait(timeout=60)


def wait_until(condition: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            msg = "timed out"
            raise TimeoutError(msg)
        time.sleep(0.02)


def throughput(app: LedgerApplication, url: str, receiver: Receiver, args: Any, n: int) -> None:
    tenant = Tenant(app, receiver, f"throughput{n}")
    for _ in range(args.licenses):
        tenant.rename(tenant.new_license(), args.changes - 1)
    backlog = args.licenses * args.changes
    workers = start_workers(url, n)
    try:
        wait_until(lambda: receiver.count(tenant.path) >= backlog, timeout=600)
    finally:
        stop(workers)
    times = [a[0] for a in receiver.of(tenant.path)]
    span = max(times) - min(times)
    print(f"throughput, {n} worker(s): {backlog} deliveries in {span:.2f} s"
          f" = {backlog / span:,.0f} deliveries/s")  # fmt: skip


def latency(app: LedgerApplication, url: str, receiver: Receiver, args: Any) -> None:
    tenant = Tenant(app, receiver, "latency")
    license_ids = [tenant.new_license() for _ in range(50)]
    workers = start_workers(url, 1)
    try:
        wait_until(lambda: receiver.count(tenant.path) >= len(license_ids), timeout=60)
        warm = receiver.count(tenant.path)
        total = int(args.rate * args.seconds)
        interval = 1.0 / args.rate
        started = time.monotonic()
        # Paced against the start and written by a few threads, so a slow command does
        # not lower the rate.
        with ThreadPoolExecutor(8) as writers:
            written = []
            for n in range(total):
                delay = started + n * interval - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                written.append(writers.submit(tenant.rename, license_ids[n % len(license_ids)]))
            for future in written:
                future.result()  # a failed write must fail the benchmark, not stall it
        achieved = total / (time.monotonic() - started)
        wait_until(lambda: receiver.count(tenant.path) >= warm + total, timeout=120)
    finally:
        stop(workers)
    arrivals = receiver.of(tenant.path)[warm:]
    latencies = sorted(
        arrived - datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()
        for arrived, _, created in arrivals
    )
    p50 = statistics.median(latencies)
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(f"latency at {achieved:.0f} events/s for {args.seconds} s ({len(latencies)} events):"
          f" p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms"
          f"  (target p99 < 1000 ms)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--licenses", type=int, default=100)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    url = fresh_database("licentric_bench_webhooks")
    app = LedgerApplication(url, pool_size=4, projector=InlineProjections())
    receiver = Receiver()
    try:
        throughput(app, url, receiver, args, 1)
        throughput(app, url, receiver, args, 2)
        latency(app, url, receiver, args)
    finally:
        app.close()
        drop_database(url)


if __name__ == "__main__":
    main()
