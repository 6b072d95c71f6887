"""The route table: every route is added through here, so the OpenAPI document and the
tests can enumerate exactly what the app serves."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import falcon

from api.operations import Operation
from api.operations import operation_of

_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_CONVERTER = re.compile(r"\{(\w+)(?::[^}]*)?\}")


@dataclass(frozen=True)
class Route:
    template: str  # as given to Falcon, e.g. /api/v1/products/{product_id:uuid}
    resource: Any
    suffix: str | None = None

    @property
    def path(self) -> str:
        """The OpenAPI path: converters removed (`{product_id}`)."""
        return _CONVERTER.sub(r"{\1}", self.template)

    def operations(self) -> Iterator[tuple[str, Operation | None]]:
        """(method, its declaration) for every responder of this route."""
        for method in _METHODS:
            name = f"on_{method.lower()}" + (f"_{self.suffix}" if self.suffix else "")
            responder = getattr(self.resource, name, None)
            if responder is not None:
                yield method, operation_of(responder)


class RouteTable:
    def __init__(self, app: falcon.App[falcon.Request, falcon.Response]) -> None:
        self._app = app
        self.routes: list[Route] = []

    def add(self, template: str, resource: Any, suffix: str | None = None) -> None:
        if suffix is None:
            self._app.add_route(template, resource)
        else:
            self._app.add_route(template, resource, suffix=suffix)
        self.routes.append(Route(template, resource, suffix))

    def find(self, method: str, path: str) -> tuple[Route, Operation | None] | None:
        """The route and declaration serving `method path` (tests check responses)."""
        found = self._app._router.find(path)
        if found is None:
            return None
        resource, _, _, template = found
        for route in self.routes:
            if route.resource is resource and route.template == template:
                for route_method, spec in route.operations():
                    if route_method == method:
                        return route, spec
        return None
