"""Operations endpoints of API.md §10: liveness and readiness."""

from __future__ import annotations

import logging
from collections.abc import Callable

import falcon

from api.auth import Auth
from api.errors import UNAVAILABLE
from api.errors import ApiError
from api.operations import operation
from api.probes import Probe
from api.schemas.common import document

_log = logging.getLogger(__name__)


class HealthResource:
    """``GET /api/v1/health``: the process is up; touches no dependency."""

    auth = Auth.NONE

    @operation(
        summary="Liveness: the process is up",
        responses={200: document({"status": {"const": "ok"}})},
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "ok"}


class ReadyResource:
    """``GET /api/v1/ready``: the database (and Redis, when configured) answer.

    Also reports each tailing consumer's lag (events not yet consumed, summed over
    tenants) for operators; lag never makes the API unready: it serves requests from
    its inline read models whatever the workers' progress.
    """

    auth = Auth.NONE

    def __init__(
        self,
        *,
        database: Probe,
        redis: Probe | None,
        lag: Callable[[], dict[str, int]] | None = None,
    ) -> None:
        self._database = database
        self._redis = redis
        self._lag = lag

    @operation(
        summary="Readiness: the database (and Redis, when configured) answer",
        responses={
            200: {
                "type": "object",
                "properties": {
                    "status": {"const": "ready"},
                    "database": {"type": "string"},
                    "lag": {
                        "type": "object",
                        "description": "Events not yet consumed per tailing consumer.",
                        "additionalProperties": {"type": "integer", "minimum": 0},
                    },
                },
                "required": ["status", "database"],
            }
        },
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        checks = {
            "database": _check("database", self._database),
            "redis": "disabled" if self._redis is None else _check("redis", self._redis),
        }
        if "unavailable" in checks.values():
            raise ApiError(UNAVAILABLE, "A dependency is unavailable.", details=checks)
        resp.media = {"status": "ready", **checks, **self._lag_report()}

    def _lag_report(self) -> dict[str, dict[str, int]]:
        if self._lag is None:
            return {}
        try:
            return {"lag": self._lag()}
        except Exception as exc:  # lag is information, not readiness
            _log.warning("lag unavailable", extra={"error": type(exc).__name__})
            return {}


def _check(name: str, probe: Probe) -> str:
    try:
        probe()
    except Exception as exc:  # any failure means "not ready"
        # The exception type only: driver messages can echo connection details.
        _log.warning("readiness check failed", extra={"check": name, "error": type(exc).__name__})
        return "unavailable"
    return "ok"
