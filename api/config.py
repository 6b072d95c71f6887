"""Runtime configuration, read once from the environment by the composition roots.

Everything else receives a :class:`Config`; nothing below ``api.cli`` / ``api.wsgi``
touches ``os.environ`` (API.md §11 lists the variables, docs/configuration.md the rest).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import platformdirs
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MASTER_KEY_BYTES = 32
MASTER_KEY_FILENAME = "master.key"
_RATE = re.compile(r"^[1-9][0-9]*/(second|minute|hour)$")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})
_LOG_LEVELS = frozenset({"debug", "info", "warning", "error", "critical"})


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclasses.dataclass(frozen=True)
class Config:
    """Resolved settings. ``database_url is None`` means embedded PostgreSQL."""

    database_url: str | None
    redis_url: str | None
    data_dir: Path
    # Secrets stay out of repr() so a logged Config never leaks them.
    master_key: bytes = dataclasses.field(repr=False)
    admin_token: str | None = dataclasses.field(default=None, repr=False)
    webhook_allow_private: bool = False
    rate_limits_enabled: bool = True
    rate_limit_validate: str = "60/minute"
    rate_limit_activate: str = "10/minute"
    rate_limit_management: str = "120/minute"
    trusted_proxies: tuple[str, ...] = ()
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 2
    threads: int = 4
    log_level: str = "info"
    # How long validation events wait in memory before their batch is appended.
    validation_flush_ms: int = 200
    # Validation facts kept in memory per API process (api/facts_cache.py); 0 turns the
    # cache off (every validation reads PostgreSQL).
    facts_cache_size: int = 100_000

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    @functools.cached_property
    def pepper(self) -> bytes:
        """Server pepper for keyed hashes of API and license keys.

        Derived rather than configured separately so that one secret (the master key)
        is all an operator must back up; HKDF's ``info`` keeps it independent of the
        encryption key material.
        """
        return derive_key(self.master_key, b"licentric-pepper")

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> Config:
        """Build a Config from ``environ``; keyword ``overrides`` (CLI flags) win.

        In embedded mode (no ``DATABASE_URL``) a missing master key is generated once
        into ``<data_dir>/master.key`` and reused on later starts.
        """
        unknown = set(overrides) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            msg = f"unknown config overrides: {sorted(unknown)}"
            raise TypeError(msg)
        env = _Env(environ)
        values: dict[str, Any] = {
            "database_url": env.text("DATABASE_URL"),
            "redis_url": env.text("REDIS_URL"),
            "data_dir": Path(
                env.text("LICENTRIC_DATA_DIR") or platformdirs.user_data_dir("licentric")
            ).expanduser(),
            "admin_token": env.text("LICENTRIC_ADMIN_TOKEN"),
            "webhook_allow_private": env.flag("LICENTRIC_WEBHOOK_ALLOW_PRIVATE", default=False),
            "rate_limits_enabled": (env.text("LICENTRIC_RATE_LIMITS") or "on").lower() != "off",
            "rate_limit_validate": env.rate("LICENTRIC_RATE_LIMIT_VALIDATE", "60/minute"),
            "rate_limit_activate": env.rate("LICENTRIC_RATE_LIMIT_ACTIVATE", "10/minute"),
            "rate_limit_management": env.rate("LICENTRIC_RATE_LIMIT_MANAGEMENT", "120/minute"),
            "trusted_proxies": env.networks("LICENTRIC_TRUSTED_PROXIES"),
            "host": env.text("LICENTRIC_HOST", "127.0.0.1"),
            "port": env.integer("LICENTRIC_PORT", 8000, low=1, high=65535),
            "workers": env.integer("LICENTRIC_WORKERS", default_workers(), low=1, high=256),
            "threads": env.integer("LICENTRIC_THREADS", 4, low=1, high=256),
            "log_level": env.choice("LICENTRIC_LOG_LEVEL", "info", _LOG_LEVELS),
            "validation_flush_ms": env.integer(
                "LICENTRIC_VALIDATION_FLUSH_MS", 200, low=10, high=600_000
            ),
            "facts_cache_size": env.integer(
                "LICENTRIC_FACTS_CACHE_SIZE", 100_000, low=0, high=100_000_000
            ),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "master_key" not in values:
            values["master_key"] = _resolve_master_key(
                env, embedded=values["database_url"] is None, data_dir=values["data_dir"]
            )
        return cls(**values)


def default_workers() -> int:
    # gthread workers x 4 threads measured best on 2 cores (NOTES.md "Serving").
    return max(2, os.cpu_count() or 1)


def derive_key(master_key: bytes, info: bytes) -> bytes:
    """A 32-byte subkey of the master key for one purpose, named by ``info``."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info)
    return hkdf.derive(master_key)


def master_key_path(data_dir: Path) -> Path:
    return data_dir / MASTER_KEY_FILENAME


def decode_master_key(text: str, source: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != MASTER_KEY_BYTES:
        msg = f"{source} must be base64 of exactly {MASTER_KEY_BYTES} bytes"
        raise ConfigError(msg)
    return key


def load_or_create_master_key(data_dir: Path) -> bytes:
    """Read ``<data_dir>/master.key``, creating it (mode 0600) on first use."""
    path = master_key_path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        # O_EXCL: two processes starting together must not each write a different key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return decode_master_key(path.read_text(encoding="ascii"), str(path))
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(base64.b64encode(os.urandom(MASTER_KEY_BYTES)).decode() + "\n")
    return decode_master_key(path.read_text(encoding="ascii"), str(path))


def _resolve_master_key(env: _Env, *, embedded: bool, data_dir: Path) -> bytes:
    if text := env.text("LICENTRIC_MASTER_KEY"):
        return decode_master_key(text, "LICENTRIC_MASTER_KEY")
    # A file reference lets `licentric serve` hand the key to gunicorn without putting
    # it in the child's environment (and suits Docker/Kubernetes secrets).
    if path := env.text("LICENTRIC_MASTER_KEY_FILE"):
        try:
            text = Path(path).read_text(encoding="ascii")
        except OSError as exc:
            msg = f"LICENTRIC_MASTER_KEY_FILE: cannot read {path}: {exc.strerror}"
            raise ConfigError(msg) from exc
        return decode_master_key(text, "LICENTRIC_MASTER_KEY_FILE")
    if embedded:
        return load_or_create_master_key(data_dir)
    msg = (
        "LICENTRIC_MASTER_KEY is required when DATABASE_URL is set (generate one with: "
        "python -c 'import base64,os;print(base64.b64encode(os.urandom(32)).decode())')"
    )
    raise ConfigError(msg)


class _Env:
    """Typed reads of environment variables with error messages naming the variable."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def text(self, name: str, default: str | None = None) -> str | None:
        value = self._environ.get(name, "").strip()
        return value or default

    def flag(self, name: str, *, default: bool) -> bool:
        value = self._environ.get(name)
        if value is None:
            return default
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        msg = f"{name} must be true or false, got {value!r}"
        raise ConfigError(msg)

    def integer(self, name: str, default: int, *, low: int, high: int) -> int:
        value = self.text(name)
        if value is None:
            return default
        if not value.isdigit() or not low <= int(value) <= high:
            msg = f"{name} must be an integer within {low}..{high}, got {value!r}"
            raise ConfigError(msg)
        return int(value)

    def choice(self, name: str, default: str, choices: frozenset[str]) -> str:
        value = (self.text(name) or default).lower()
        if value not in choices:
            msg = f"{name} must be one of {sorted(choices)}, got {value!r}"
            raise ConfigError(msg)
        return value

    def rate(self, name: str, default: str) -> str:
        value = (self.text(name) or default).replace(" ", "")
        if not _RATE.match(value):
            msg = f"{name} must look like N/second, N/minute or N/hour, got {value!r}"
            raise ConfigError(msg)
        return value

    def networks(self, name: str) -> tuple[str, ...]:
        items = [item.strip() for item in (self.text(name) or "").split(",") if item.strip()]
        try:
            return tuple(str(ipaddress.ip_network(item, strict=False)) for item in items)
        except ValueError as exc:
            msg = f"{name} must be a comma-separated list of CIDRs: {exc}"
            raise ConfigError(msg) from exc
