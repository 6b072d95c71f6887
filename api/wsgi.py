"""Gunicorn entry point: ``gunicorn -c api/gunicorn_conf.py api.wsgi:app``.

A composition root: it reads the environment (``licentric serve`` has already resolved
the database, so ``DATABASE_URL`` is always set here).
"""

from __future__ import annotations

import os

from api.app import create_app
from api.config import Config
from api.config import ConfigError
from api.logging import configure_logging

_config = Config.from_env(os.environ)
if _config.database_url is None:
    raise ConfigError(
        "DATABASE_URL is not set: start the server with `licentric serve` "
        "(it provides an embedded PostgreSQL) or set DATABASE_URL"
    )
configure_logging(_config.log_level)
app = create_app(_config)
