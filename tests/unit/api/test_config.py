"""Config.from_env: defaults, validation and the embedded-mode master key."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from api.config import Config
from api.config import ConfigError

KEY = base64.b64encode(bytes(range(32))).decode()


def test_embedded_mode_generates_a_private_master_key_once(tmp_path: Path) -> None:
    env = {"LICENTRIC_DATA_DIR": str(tmp_path / "data")}

    first = Config.from_env(env)
    second = Config.from_env(env)

    assert first.embedded
    assert len(first.master_key) == 32
    assert second.master_key == first.master_key
    key_file = tmp_path / "data" / "master.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_external_database_requires_a_master_key(tmp_path: Path) -> None:
    env = {"DATABASE_URL": "postgresql://db/x", "LICENTRIC_DATA_DIR": str(tmp_path)}

    with pytest.raises(ConfigError, match="LICENTRIC_MASTER_KEY"):
        Config.from_env(env)


def test_master_key_from_environment_or_file(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    base = {"DATABASE_URL": "postgresql://db/x", "LICENTRIC_DATA_DIR": str(tmp_path)}

    from_env = Config.from_env({**base, "LICENTRIC_MASTER_KEY": KEY})
    from_file = Config.from_env({**base, "LICENTRIC_MASTER_KEY_FILE": str(key_file)})

    assert from_env.master_key == from_file.master_key == bytes(range(32))


@pytest.mark.parametrize("bad", ["not base64!", base64.b64encode(b"short").decode()])
def test_malformed_master_key_is_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigError, match="32 bytes"):
        Config.from_env({"LICENTRIC_MASTER_KEY": bad, "LICENTRIC_DATA_DIR": str(tmp_path)})


def test_pepper_is_derived_deterministically_and_differs_from_the_key(tmp_path: Path) -> None:
    env = {"LICENTRIC_MASTER_KEY": KEY, "LICENTRIC_DATA_DIR": str(tmp_path)}

    pepper = Config.from_env(env).pepper

    assert pepper == Config.from_env(env).pepper
    assert len(pepper) == 32
    assert pepper != bytes(range(32))


def test_secrets_stay_out_of_repr(tmp_path: Path) -> None:
    env = {
        "LICENTRIC_MASTER_KEY": KEY,
        "LICENTRIC_ADMIN_TOKEN": "admintoken123",
        "LICENTRIC_DATA_DIR": str(tmp_path),
    }

    text = repr(Config.from_env(env))

    assert "admintoken123" not in text
    assert "master_key" not in text


def test_overrides_win_over_the_environment(tmp_path: Path) -> None:
    env = {"LICENTRIC_MASTER_KEY": KEY, "LICENTRIC_PORT": "9000", "LICENTRIC_DATA_DIR": "/x"}

    config = Config.from_env(env, port=9100, host="0.0.0.0", workers=None)

    assert (config.port, config.host) == (9100, "0.0.0.0")
    assert config.workers >= 2


def test_rate_limits_and_proxies_are_parsed(tmp_path: Path) -> None:
    env = {
        "LICENTRIC_MASTER_KEY": KEY,
        "LICENTRIC_DATA_DIR": str(tmp_path),
        "LICENTRIC_RATE_LIMIT_VALIDATE": "100/second",
        "LICENTRIC_RATE_LIMITS": "off",
        "LICENTRIC_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.7",
        "LICENTRIC_WEBHOOK_ALLOW_PRIVATE": "true",
    }

    config = Config.from_env(env)

    assert config.rate_limit_validate == "100/second"
    assert config.rate_limit_activate == "10/minute"
    assert not config.rate_limits_enabled
    assert config.trusted_proxies == ("10.0.0.0/8", "192.168.1.7/32")
    assert config.webhook_allow_private


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LICENTRIC_RATE_LIMIT_ACTIVATE", "10 per minute"),
        ("LICENTRIC_PORT", "http"),
        ("LICENTRIC_TRUSTED_PROXIES", "not-a-cidr"),
        ("LICENTRIC_WEBHOOK_ALLOW_PRIVATE", "maybe"),
        ("LICENTRIC_LOG_LEVEL", "loud"),
    ],
)
def test_malformed_settings_name_the_variable(tmp_path: Path, name: str, value: str) -> None:
    env = {"LICENTRIC_MASTER_KEY": KEY, "LICENTRIC_DATA_DIR": str(tmp_path), name: value}

    with pytest.raises(ConfigError, match=name):
        Config.from_env(env)


def test_default_data_dir_is_the_users_data_directory() -> None:
    config = Config.from_env({"LICENTRIC_MASTER_KEY": KEY})

    assert config.data_dir.name == "licentric"
    assert str(config.data_dir).startswith(os.path.expanduser("~"))
