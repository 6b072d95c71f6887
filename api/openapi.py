"""`GET /api/v1/openapi.json`: OpenAPI 3.1 built from the route table and `@operation`s."""

from __future__ import annotations

import re
from typing import Any

import falcon

from api.auth import Auth
from api.operations import Operation
from api.operations import operation
from api.routing import Route
from api.routing import RouteTable
from api.schemas.common import ERROR

_PARAM = re.compile(r"\{(\w+)\}")
_ERROR_STATUSES = {
    400: "Invalid request (VALIDATION_ERROR)",
    401: "Missing, unknown or revoked credential",
    403: "The credential lacks the scope",
    404: "Not found (or another tenant's)",
    409: "Conflict",
    422: "Business rule refused the request",
    429: "Rate limited",
    503: "Database unavailable",
}
_SECURITY: dict[Auth, list[dict[str, list[str]]]] = {
    Auth.API_KEY: [{"apiKey": []}],
    Auth.LICENSE_OR_API_KEY: [{"apiKey": []}, {"licenseKey": []}],
    Auth.OPERATOR: [{"operatorToken": []}],
    Auth.NONE: [],
}


def _operation_id(method: str, route: Route) -> str:
    words = [w for w in re.split(r"[^A-Za-z0-9]+", route.path.removeprefix("/api/v1")) if w]
    return method.lower() + "".join(w.capitalize() for w in words)


def _operation(method: str, route: Route, spec: Operation) -> dict[str, Any]:
    auth: Auth = getattr(route.resource, "auth", Auth.API_KEY)
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PARAM.findall(route.path)
    ]
    params += [{"name": name, "in": "query", "schema": s} for name, s in spec.query.items()]
    responses: dict[str, Any] = {}
    for status, schema in spec.responses.items():
        entry: dict[str, Any] = {"description": spec.summary}
        if schema is not None:
            media_type = spec.media_types.get(status, "application/json")
            entry["content"] = {media_type: {"schema": schema}}
        responses[str(status)] = entry
    for status, text in _ERROR_STATUSES.items():
        responses.setdefault(
            str(status),
            {"description": text, "content": {"application/json": {"schema": ERROR}}},
        )
    op: dict[str, Any] = {
        "operationId": _operation_id(method, route),
        "summary": spec.summary,
        "parameters": params,
        "responses": responses,
        "security": _SECURITY[auth],
    }
    if spec.description:
        op["description"] = spec.description
    if spec.scope is not None:
        op["x-scope"] = str(spec.scope)
    if spec.body is not None:
        op["requestBody"] = {
            "required": spec.body_required,
            "content": {"application/json": {"schema": spec.body}},
        }
    return op


def build_document(table: RouteTable) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in table.routes:
        for method, spec in route.operations():
            if spec is not None:
                paths.setdefault(route.path, {})[method.lower()] = _operation(method, route, spec)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Licentric Ledger",
            "version": "1",
            "description": "Licentric-compatible /api/v1 (see API.md).",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "lk_live_… / lk_test_…",
                },
                "licenseKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "License <license key>",
                },
                "operatorToken": {"type": "http", "scheme": "bearer"},
            }
        },
    }


class OpenApiResource:
    auth = Auth.NONE

    def __init__(self, table: RouteTable) -> None:
        self._table = table
        self._document: dict[str, Any] | None = None

    @operation(summary="This OpenAPI 3.1 document", responses={200: {"type": "object"}})
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        # Built on first use: every route is registered by then.
        if self._document is None:
            self._document = build_document(self._table)
        resp.media = self._document
