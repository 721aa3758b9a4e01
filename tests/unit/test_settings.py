"""Settings: embedded defaults, sources and their precedence, and one clear line per bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernel.errors import ConfigError
from kernel.settings import load_settings, mask_url


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in list(__import__("os").environ):
        if name.startswith("TD_") and not name.startswith(("TD_TEST_", "TD_REQUIRE")):
            monkeypatch.delenv(name)


def test_embedded_defaults_live_in_the_data_dir(tmp_path: Path):
    settings = load_settings()
    data_dir = tmp_path / ".taylordash"
    assert settings.data_dir == data_dir
    assert settings.database_url == f"sqlite+aiosqlite:///{data_dir / 'taylordash.db'}"
    assert settings.bus_url == "memory://"
    assert settings.storage_url == f"file://{data_dir / 'objects'}"
    assert settings.should_migrate_on_start is True


def test_environment_beats_toml_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    (tmp_path / "taylordash.toml").write_text('port = 9000\nlog_level = "debug"\n[plugins.auth]\naccess_ttl = 60\n')
    monkeypatch.setenv("TD_PORT", "9100")
    monkeypatch.setenv("TD_PLUGINS__EVENTS__ATTEMPTS", "3")
    settings = load_settings()
    assert settings.port == 9100
    assert settings.log_level == "debug"
    assert settings.plugin_settings("auth") == {"access_ttl": 60}
    assert settings.plugin_settings("events") == {"attempts": "3"}


def test_config_file_location_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    other = tmp_path / "elsewhere.toml"
    other.write_text('bus_url = "mqtt://user:pw@broker:1883"\n')
    monkeypatch.setenv("TD_CONFIG_FILE", str(other))
    settings = load_settings()
    assert settings.bus_url == "mqtt://user:pw@broker:1883"
    assert settings.should_migrate_on_start is True


def test_postgres_is_not_migrated_on_start_by_default():
    settings = load_settings(database_url="postgresql+asyncpg://postgres@db:5432/td")
    assert settings.should_migrate_on_start is False


def test_every_bad_value_gets_its_own_line(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TD_PORT", "99999")
    monkeypatch.setenv("TD_DATABASE_URL", "mysql://root@db/td")
    monkeypatch.setenv("TD_BUS_URL", "mqtt://")
    monkeypatch.setenv("TD_STORAGE_URL", "s3://")
    monkeypatch.setenv("TD_LOG_LEVEL", "loud")
    monkeypatch.setenv("TD_COLOUR", "blue")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    problems = caught.value.problems
    assert len(problems) == 6
    joined = "\n".join(problems)
    assert "TD_COLOUR: unknown setting" in joined
    assert "TD_PORT:" in joined
    assert "TD_DATABASE_URL: unsupported scheme 'mysql'" in joined
    assert "TD_BUS_URL: 'mqtt://' names no host" in joined
    assert "TD_STORAGE_URL:" in joined
    assert "TD_LOG_LEVEL:" in joined
    assert all("\n" not in line for line in problems)


def test_unknown_key_in_toml_is_refused(tmp_path: Path):
    (tmp_path / "taylordash.toml").write_text("prot = 8000\n")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.problems == ["TD_PROT: unknown setting"]


def test_malformed_toml_is_one_line(tmp_path: Path):
    (tmp_path / "taylordash.toml").write_text("port = = 1\n")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith("taylordash.toml:")


def test_malformed_port_in_url():
    with pytest.raises(ConfigError) as caught:
        load_settings(database_url="postgresql+asyncpg://postgres@db:notaport/td")
    assert "malformed port" in caught.value.problems[0]


def test_secrets_are_masked():
    settings = load_settings(secret_key="s3cret-material", database_url="postgresql+asyncpg://td:hunter2@db:5432/td")
    shown = settings.public_dict()
    assert shown["secret_key"] == "**********"
    assert shown["database_url"] == "postgresql+asyncpg://td:***@db:5432/td"
    assert "hunter2" not in str(shown) and "s3cret" not in str(shown)
    assert mask_url("mqtt://broker:1883") == "mqtt://broker:1883"


def test_signing_key_generated_once_and_private(tmp_path: Path):
    settings = load_settings(data_dir=tmp_path / "d")
    first = settings.signing_key()
    assert len(first) >= 48
    assert settings.signing_key() == first
    assert oct((tmp_path / "d" / "secret.key").stat().st_mode & 0o777) == "0o600"
    assert load_settings(secret_key="given").signing_key() == b"given"
