"""Structured JSON logs on stderr, one object per line.

The request id travels in a context variable (set by :mod:`api.request_id`) so every
record logged while serving a request carries it without threading it through calls.
Callers must never pass headers or bodies as ``extra``: Authorization values and license
keys are secrets (ARCHITECTURE.md §8.7).
"""

from __future__ import annotations

import contextvars
import datetime
import logging
import re
import sys
from typing import Any

import orjson

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "licentric_request_id", default=None
)

# Last line of defence for what slips past that rule (gunicorn logs every request line at
# debug, and `GET /licenses/by-key/<key>` carries a license key in its path): secrets of a
# recognisable shape are masked in every rendered line, whatever logged them.
_REDACTIONS = (
    (re.compile(r"(/by-key/)[^\s\"?#]+"), r"\1[REDACTED]"),
    (re.compile(r"\blk_(live|test)_[0-9A-Za-z]+"), r"lk_\1_[REDACTED]"),
    (re.compile(r"\bwhsec_[0-9A-Za-z+/=]+"), "whsec_[REDACTED]"),
    # License keys: PREFIX-XXXX-XXXX-XXXX-XXXX (ledger.crypto.new_license_key).
    (re.compile(r"\b[A-Z]{2,10}(?:-[A-HJ-NP-Z2-9]{4}){4}\b"), "[REDACTED-LICENSE-KEY]"),
)


def redact(text: str) -> str:
    """`text` with API keys, license keys and webhook secrets masked."""
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", (), None)).keys()
    | {"message", "asctime", "taskName"}
)


class JsonFormatter(logging.Formatter):
    """Render a record as a compact JSON object (``ts``, ``level``, ``logger``, ``msg``…)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.datetime.fromtimestamp(record.created, tz=datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id is not None:
            entry["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return redact(orjson.dumps(entry, default=str).decode())


def configure_logging(level: str = "info") -> None:
    """Send all logs as JSON to stderr at ``level``; idempotent."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Library chatter that would drown start-up lines (pg_ctl command lines, pool churn).
    for noisy in ("pgserver", "psycopg.pool"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def gunicorn_logconfig(level: str) -> dict[str, Any]:
    """``logconfig_dict`` that makes gunicorn's own error log JSON too."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": level.upper(), "handlers": [], "propagate": True},
            # Access logs are off: a line per request would carry query strings.
            "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
            "pgserver": {"level": "WARNING"},
        },
    }
