"""The baseline of the validation benchmark: a bare Falcon app, nothing but HTTP.

Served by gunicorn with the API's own config (api/gunicorn_conf.py: same worker class,
workers, threads, keep-alive), it answers `POST /api/v1/licenses/validate-key` (the same
path, so routing costs the same) by reading the request body and returning a constant
JSON body of `BENCH_BARE_BODY_BYTES` bytes: the size of a real validate-key answer.
No middleware, no database, no signing. `GET` on the same path answers too (readiness).

    gunicorn -c api/gunicorn_conf.py scripts.bench.bare_app:app
"""

from __future__ import annotations

import os

import falcon
import orjson

PATH = "/api/v1/licenses/validate-key"


def constant_body(size: int) -> bytes:
    """A JSON object of exactly `size` bytes (at least the size of its skeleton)."""
    skeleton = orjson.dumps({"data": {"valid": True, "code": "VALID", "pad": ""}})
    return orjson.dumps(
        {"data": {"valid": True, "code": "VALID", "pad": "x" * max(0, size - len(skeleton))}}
    )


class Constant:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.bounded_stream.read()
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self._body

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self._body


app = falcon.App()
app.add_route(PATH, Constant(constant_body(int(os.environ.get("BENCH_BARE_BODY_BYTES", "400")))))
