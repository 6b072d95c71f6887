"""Gunicorn settings for the API, loaded with ``-c`` by ``licentric serve``.

Read by gunicorn's master as a plain module, so settings are module globals. Values come
from the same :class:`Config` the app uses (``LICENTRIC_HOST``/``LICENTRIC_PORT``… are set
by the CLI from its flags).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from gunicorn import glogging

from api.config import Config
from api.logging import gunicorn_logconfig
from api.transport_errors import install as install_json_transport_errors
from ledger.store.dsn import redact_url

_config = Config.from_env(os.environ)
# Requests gunicorn itself refuses (request line > 4094 bytes, …) answer JSON, not HTML.
install_json_transport_errors()

bind = [f"{_config.host}:{_config.port}"]
# gthread: 2 workers x 4 threads was the fastest shape measured on 2 cores (NOTES.md).
worker_class = "gthread"
workers = _config.workers
threads = _config.threads
# Keep-alive lets SDK clients reuse connections; 5 s is short enough that idle clients
# do not pin gthread threads for long.
keepalive = 5
timeout = 30
graceful_timeout = 20
# Recycle workers now and then so a slow leak cannot grow without bound; jitter keeps
# all workers from restarting at the same moment. A restart costs ~0.8 s of CPU (the
# app's imports) plus new database connections, and stalls the requests queued on that
# worker (p99 spikes of ~0.9 s in scripts/bench/validate.py): at validate-key rates
# 10,000 meant a restart every ~10-20 s per worker; 100,000 means every few minutes.
max_requests = 100_000
max_requests_jitter = 10_000
# No preload: psycopg pools and Redis clients must be created after fork, per worker.
preload_app = False
proc_name = "licentric-api"
# Gunicorn >= 24 opens a control socket at a fixed per-user path: several servers on one
# host (tests, side-by-side deployments) would fight over it, and nothing here uses it.
control_socket_disable = True
# Access logs stay off: one line per request would carry query strings (cursors, keys).
accesslog = None


class _Logger(glogging.Logger):  # type: ignore[misc]  # gunicorn is untyped
    """Gunicorn's logger, minus the per-request access-log work while `accesslog` is off.

    Gunicorn counts a `logconfig_dict` (ours, below) as "access logging enabled" and then
    builds the access-log atoms (a dict of every header and environ entry) for every
    request only to drop the line: ~9 % of a validate-key request's Python time in the
    py-spy profile of scripts/bench/validate.py. Setting `accesslog` turns it back on.
    """

    @property
    def access_log_enabled(self) -> bool:
        return bool(self.cfg.accesslog)

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        if self.cfg.accesslog:
            super().access(resp, req, environ, request_time)


logger_class = _Logger
loglevel = _config.log_level
logconfig_dict = gunicorn_logconfig(_config.log_level)
# The heartbeat file lives on tmpfs when there is one, so a slow disk cannot make the
# arbiter think healthy workers are stuck (the usual advice for containers).
if Path("/dev/shm").is_dir():  # noqa: S108  (tmpfs, not a shared temp dir)
    worker_tmp_dir = "/dev/shm"  # noqa: S108

_log = logging.getLogger("licentric.serve")


def when_ready(server: Any) -> None:
    database = _config.database_url or "<unset>"
    _log.info(
        "listening on http://%s:%s, database: %s",
        _config.host,
        _config.port,
        redact_url(database),
        extra={"workers": _config.workers, "threads": _config.threads},
    )


def worker_exit(server: Any, worker: Any) -> None:
    # Validation events wait in memory for their batch (api/validation_events.py):
    # append them before this worker's process ends (SIGTERM, max_requests recycling).
    from api.validation_events import close_all  # noqa: PLC0415 (the worker's import)

    close_all()


def child_exit(server: Any, worker: Any) -> None:
    # Drop a dead worker's live gauges from the aggregated /metrics (prometheus_client).
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess  # noqa: PLC0415

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
