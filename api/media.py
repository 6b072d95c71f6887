"""JSON in and out (orjson), with the 1 MiB body cap of API.md §2.

Every parsed body is also checked for what PostgreSQL or our own serialisers would
choke on later (a 500 after part of the work, instead of a clear 400 up front):
NUL characters (`jsonb` and `text` refuse U+0000) and nesting deeper than
MAX_DEPTH (orjson serialises at most 254 levels; no schema of ours needs 10).
"""

from __future__ import annotations

from typing import Any

import falcon
import falcon.media
import orjson

from api.errors import validation_error

MAX_BODY_BYTES = 1024 * 1024
MAX_DEPTH = 64
_TOO_LARGE = f"The request body exceeds {MAX_BODY_BYTES} bytes."
_NUL_ESCAPE = b"\\u0000"  # how JSON text spells U+0000 (a raw NUL is not valid JSON)


class BoundedJSONHandler(falcon.media.JSONHandler):
    """JSONHandler that never reads more than the cap, even for chunked bodies."""

    def deserialize(self, stream: Any, content_type: str | None, content_length: int | None) -> Any:
        data = stream.read(MAX_BODY_BYTES + 1)
        if len(data) > MAX_BODY_BYTES:
            raise falcon.HTTPContentTooLarge(description=_TOO_LARGE)
        document = self._deserialize(data)
        if may_be_unstorable(data):
            check_storable(document)
        return document


def may_be_unstorable(data: bytes) -> bool:
    """Cheap byte tests that clear most bodies without walking them: no NUL escape, and
    fewer brackets than MAX_DEPTH (so no nesting that deep)."""
    return _NUL_ESCAPE in data or data.count(b"[") + data.count(b"{") > MAX_DEPTH


def check_storable(document: Any) -> None:
    """400 for a NUL in any string or key, or nesting deeper than MAX_DEPTH (iterative:
    a hostile body must not exhaust the Python stack either)."""
    stack: list[tuple[Any, list[str | int]]] = [(document, [])]
    while stack:
        value, path = stack.pop()
        if len(path) > MAX_DEPTH:
            raise validation_error(f"The request body is nested deeper than {MAX_DEPTH} levels.")
        if isinstance(value, str) and "\x00" in value:
            raise validation_error("Strings must not contain NUL (\\u0000) characters.", path)
        if isinstance(value, dict):
            for key, item in value.items():
                if "\x00" in key:
                    raise validation_error("Keys must not contain NUL (\\u0000) characters.", path)
                stack.append((item, [*path, key]))
        elif isinstance(value, list):
            stack.extend((item, [*path, index]) for index, item in enumerate(value))


class BodyLimitMiddleware:
    """Refuse a declared oversize body before reading any of it."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.content_length is not None and req.content_length > MAX_BODY_BYTES:
            raise falcon.HTTPContentTooLarge(description=_TOO_LARGE)
        # A body without a Content-Type is not assumed to be JSON (API.md §1): browsers
        # send such bodies cross-site without a CORS preflight.
        has_body = bool(req.content_length) or req.get_header("Transfer-Encoding") is not None
        if has_body and req.content_type is None:
            raise falcon.HTTPUnsupportedMediaType()


def install(app: falcon.App[falcon.Request, falcon.Response]) -> None:
    """JSON is the only media type: a form or text body is refused (415 → 400)."""
    handler = BoundedJSONHandler(dumps=orjson.dumps, loads=orjson.loads)
    app.req_options.media_handlers = falcon.media.Handlers({falcon.MEDIA_JSON: handler})
    app.resp_options.media_handlers = falcon.media.Handlers({falcon.MEDIA_JSON: handler})
