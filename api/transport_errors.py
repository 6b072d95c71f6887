"""Gunicorn's own refusals (request line or headers too large, malformed HTTP) in the
API.md §2 envelope instead of its HTML page.

Those requests never reach Falcon: gunicorn answers them from `Worker.handle_error`
through `gunicorn.util.write_error`, which `install()` replaces (called once from
`api/gunicorn_conf.py`, so every worker inherits it). Like the app's 413/414/415, a
request the parser refuses is the client's input problem: 400 VALIDATION_ERROR.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from gunicorn import util

from api.errors import INTERNAL
from api.errors import VALIDATION_ERROR
from api.errors import envelope

_MAX_MESSAGE = 200  # gunicorn quotes the offending request line or header


def write_json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    # 500 is gunicorn's "the application failed"; every other refusal is the client's.
    status, code = (500, INTERNAL) if status_int == 500 else (400, VALIDATION_ERROR)
    message = (mesg if status == 400 and mesg else reason)[:_MAX_MESSAGE]
    request_id = uuid.uuid4().hex
    details = {"issues": [{"path": [], "message": message}]} if status == 400 else None
    body = orjson.dumps(
        envelope(message=message, code=code, status=status, request_id=request_id, details=details)
    )
    phrase = "Bad Request" if status == 400 else "Internal Server Error"
    head = (
        f"HTTP/1.1 {status} {phrase}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nX-Request-Id: {request_id}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


def install() -> None:
    util.write_error = write_json_error
