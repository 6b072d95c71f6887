"""Request ids: echo the client's ``X-Request-Id`` or mint one, on every response."""

from __future__ import annotations

import re
from typing import Any

import falcon

from api.logging import request_id_var
from ledger.ids import unique_id

HEADER = "X-Request-Id"
# Echoed ids end up in logs and headers: accept only a conservative alphabet and length
# so a client cannot inject log lines or oversized headers through it.
_ACCEPTABLE = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


def request_id_of(req: falcon.Request) -> str:
    """The request's id, minting one if middleware has not run (early failures)."""
    request_id = getattr(req.context, "request_id", None)
    if request_id is None:
        request_id = choose_request_id(req.get_header(HEADER))
        req.context.request_id = request_id
    return str(request_id)


class RequestIdMiddleware:
    """First middleware: ids are known before anything can fail."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        request_id = request_id_of(req)
        req.context.request_id_token = request_id_var.set(request_id)
        resp.set_header(HEADER, request_id)

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        resp.set_header(HEADER, request_id_of(req))
        token = getattr(req.context, "request_id_token", None)
        if token is not None:
            # gthread workers reuse threads: never let one request's id leak into the next.
            request_id_var.reset(token)
            req.context.request_id_token = None


def choose_request_id(incoming: str | None) -> str:
    if incoming is not None and _ACCEPTABLE.fullmatch(incoming):
        return incoming
    return unique_id().hex
