"""JSON in and out (orjson), with the 1 MiB body cap of API.md §2."""

from __future__ import annotations

from typing import Any

import falcon
import falcon.media
import orjson

MAX_BODY_BYTES = 1024 * 1024
_TOO_LARGE = f"The request body exceeds {MAX_BODY_BYTES} bytes."


class BoundedJSONHandler(falcon.media.JSONHandler):
    """JSONHandler that never reads more than the cap, even for chunked bodies."""

    def deserialize(self, stream: Any, content_type: str | None, content_length: int | None) -> Any:
        data = stream.read(MAX_BODY_BYTES + 1)
        if len(data) > MAX_BODY_BYTES:
            raise falcon.HTTPContentTooLarge(description=_TOO_LARGE)
        return self._deserialize(data)


class BodyLimitMiddleware:
    """Refuse a declared oversize body before reading any of it."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.content_length is not None and req.content_length > MAX_BODY_BYTES:
            raise falcon.HTTPContentTooLarge(description=_TOO_LARGE)


def install(app: falcon.App[falcon.Request, falcon.Response]) -> None:
    """JSON is the only media type: a form or text body is refused (415 → 400)."""
    handler = BoundedJSONHandler(dumps=orjson.dumps, loads=orjson.loads)
    app.req_options.media_handlers = falcon.media.Handlers({falcon.MEDIA_JSON: handler})
    app.resp_options.media_handlers = falcon.media.Handlers({falcon.MEDIA_JSON: handler})
