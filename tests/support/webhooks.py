"""A local webhook receiver and worker processes for the webhook end-to-end tests.

The receiver is a real HTTP server on 127.0.0.1 (a thread of the test process). Every
request is verified with the official SDK's `licentric.webhook.verify_webhook` and with
the `standardwebhooks` package, against the secrets registered for its path. It can be
told to fail a share of attempts (500), to sleep past the worker's timeout, or to
answer 410. Only answers it gave with a 2xx count as *accepted*.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import standardwebhooks
from licentric.webhook import WebhookSignatureError
from licentric.webhook import verify_webhook

from tests.support.processes import licentric_command
from tests.support.processes import server_env


@dataclass(frozen=True)
class Received:
    path: str
    id: str
    type: str
    sequence: int
    license_id: str | None
    data: dict[str, Any]
    at: float
    status: int


@dataclass
class Behaviour:
    """How the receiver answers: shares are of attempts, drawn independently."""

    fail_share: float = 0.0
    sleep_share: float = 0.0
    sleep_seconds: float = 0.0
    gone: bool = False
    latency: float = 0.0
    # After this many failed answers to one message, the next attempt is answered 200:
    # failures still reorder and repeat attempts, but no delivery runs out of its ten
    # attempts (at a 30 % failure share that was ~1 % of runs of 2,000 messages, more on
    # a loaded machine where slow answers time out too).
    max_failures_per_message: int | None = None


@dataclass
class Receiver:
    secrets: dict[str, list[str]] = field(default_factory=dict)
    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    seed: int = 1234
    port: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(self.seed)
        self._failures: dict[tuple[str, str], int] = {}

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def register(self, path: str, secret: str, behaviour: Behaviour | None = None) -> None:
        with self._lock:
            self.secrets.setdefault(path, []).append(secret)
            self.behaviours[path] = behaviour or Behaviour()

    def accepted(self, path: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.received if 200 <= r.status < 300 and path in (None, r.path)]

    def answer(self, path: str, body: bytes, headers: Mapping[str, str]) -> int:
        with self._lock:
            secrets = list(self.secrets.get(path, []))
            behaviour = self.behaviours.get(path, Behaviour())
            draw = self._random.random()
        envelope = self._verify(path, body, headers, secrets)
        if envelope is None:
            return 400
        if behaviour.latency:
            time.sleep(behaviour.latency * self._random.random())
        failed_before = self._failures.get((path, envelope["id"]), 0)
        cap = behaviour.max_failures_per_message
        if behaviour.gone:
            status = 410
        elif cap is not None and failed_before >= cap:
            status = 200
        elif draw < behaviour.sleep_share:
            time.sleep(behaviour.sleep_seconds)
            status = 503  # too late anyway: the worker has given up on this attempt
        elif draw < behaviour.sleep_share + behaviour.fail_share:
            status = 500
        else:
            status = 200
        data = envelope["data"]
        license_id = data.get("licenseId") if "licenseId" in data else data.get("id")
        record = Received(
            path=path,
            id=envelope["id"],
            type=envelope["type"],
            sequence=envelope["sequence"],
            license_id=license_id,
            data=data,
            at=time.time(),
            status=status,
        )
        with self._lock:
            self.received.append(record)
            if not 200 <= status < 300:
                self._failures[path, envelope["id"]] = failed_before + 1
        return status

    def _verify(
        self, path: str, body: bytes, headers: Mapping[str, str], secrets: list[str]
    ) -> dict[str, Any] | None:
        problems = []
        for secret in reversed(secrets):
            try:
                verify_webhook(
                    body,
                    headers.get("X-Licentric-Signature"),
                    headers.get("X-Licentric-Timestamp"),
                    secret,
                )
                standardwebhooks.Webhook(secret).verify(
                    body,
                    {
                        k: headers[k]
                        for k in ("webhook-id", "webhook-timestamp", "webhook-signature")
                    },
                )
            except (
                WebhookSignatureError,
                standardwebhooks.WebhookVerificationError,
                KeyError,
            ) as e:
                problems.append(repr(e))
                continue
            envelope: dict[str, Any] = orjson.loads(body)
            if headers.get("webhook-id") != envelope["id"]:
                problems.append("webhook-id differs from the envelope id")
                continue
            return envelope
        with self._lock:
            self.invalid.append(f"{path}: {problems}")
        return None


@contextlib.contextmanager
def running_receiver(receiver: Receiver) -> Iterator[Receiver]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            if len(body) < length:
                # The sender died mid-request (a worker killed with SIGKILL): nothing
                # arrived, as for any dropped connection; it is not a bad signature.
                self.close_connection = True
                return
            status = receiver.answer(self.path, body, self.headers)
            reply = b'{"ok":true}' if status == 200 else b'{"ok":false}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            with contextlib.suppress(OSError):
                self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


def worker_env(database_url: str, master_key: str, **settings: str) -> dict[str, str]:
    return server_env(
        DATABASE_URL=database_url,
        LICENTRIC_MASTER_KEY=master_key,
        LICENTRIC_WEBHOOK_ALLOW_PRIVATE="true",
        LICENTRIC_LOG_LEVEL="warning",
        **settings,
    )


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log_path: Path

    def kill(self) -> None:
        """kill -9: no chance to finish anything."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self, timeout: float = 30.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()


def start_worker(env: Mapping[str, str], log_dir: Path, name: str) -> WorkerProcess:
    log_path = log_dir / f"{name}.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [*licentric_command(), "worker"], env=dict(env), stdout=log, stderr=subprocess.STDOUT
        )
    return WorkerProcess(process, log_path)


@contextlib.contextmanager
def running_workers(
    env: Mapping[str, str], log_dir: Path, count: int = 1
) -> Iterator[list[WorkerProcess]]:
    workers = [start_worker(env, log_dir, f"worker-{n}") for n in range(count)]
    try:
        yield workers
    finally:
        for worker in workers:
            worker.stop()


def wait_for(condition: Any, timeout: float, interval: float = 0.1) -> None:
    """Poll `condition()` until true; the timeout only bounds a broken run."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            msg = f"condition not met within {timeout} s"
            raise TimeoutError(msg)
        time.sleep(interval)


def per_license(received: list[Received]) -> dict[str | None, list[int]]:
    sequences: dict[str | None, list[int]] = {}
    for record in sorted(received, key=lambda r: r.at):
        sequences.setdefault(record.license_id, []).append(record.sequence)
    return sequences
