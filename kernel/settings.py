"""Settings: one validated object, read from ``TD_*`` environment variables and ``taylordash.toml``.

Precedence: explicit arguments > environment > ``taylordash.toml`` > embedded defaults. Plugin settings
live under ``[plugins.<name>]`` in the TOML file or ``TD_PLUGINS__<NAME>__<FIELD>`` in the environment
and are validated against the schema the plugin declares (see ``plugin_config_schema``).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from kernel.errors import ConfigError

ENV_PREFIX = "TD_"
CONFIG_FILE_ENV = "TD_CONFIG_FILE"
# Variables with the TD_ prefix that steer the test harness, not the product.
HARNESS_ENV = ("TD_REQUIRE_SERVICES", "TD_TEST_")

DATABASE_SCHEMES = ("sqlite+aiosqlite", "postgresql+asyncpg")
BUS_SCHEMES = ("memory", "mqtt", "mqtts")
STORAGE_SCHEMES = ("file", "s3")


def _check_url(value: str, schemes: tuple[str, ...], *, needs_host: bool) -> str:
    parts = urlsplit(value)
    if parts.scheme not in schemes:
        shown = parts.scheme or "(none)"
        expected = ", ".join(f"{s}://" for s in schemes)
        raise ValueError(f"unsupported scheme {shown!r} in {mask_url(value)!r}; expected one of {expected}")
    if needs_host and not parts.hostname:
        raise ValueError(f"{mask_url(value)!r} names no host")
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as exc:
        raise ValueError(f"malformed port in {mask_url(value)!r}") from exc
    return value


def mask_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***`` (for logs and ``config show``)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


class Settings(BaseSettings):
    """Everything the kernel is configured with. Field ``x`` is set by ``TD_X``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    data_dir: Path = Field(Path(".taylordash"), description="Embedded database, objects, keys, uploads")
    database_url: str = Field("", description="sqlite+aiosqlite:///… or postgresql+asyncpg://…")
    bus_url: str = Field("memory://", description="memory://, mqtt://user:pass@host:1883 or mqtts://")
    storage_url: str = Field("", description="file:///path or s3://…")
    secret_key: SecretStr | None = Field(None, description="Signing-key material shared by all instances")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    workers: int = Field(1, ge=1, le=64)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] = "json"
    db_pool_size: int = Field(10, ge=1, le=200)
    db_max_overflow: int = Field(10, ge=0, le=200)
    db_echo: bool = False
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Largest JSON request body accepted")
    migrate_on_start: bool | None = Field(
        None, description="Upgrade the schema at start; default: yes for SQLite, no for PostgreSQL"
    )
    bus_client_id: str = Field(
        "",
        max_length=128,
        description="MQTT client id of this instance, stable across restarts so it resumes its broker session "
        "(default taylordash-<hostname>-<port>; unique per instance)",
    )
    bus_share_group: str = Field(
        "taylordash", pattern=r"^[A-Za-z0-9_\-]+$", description="Shared-subscription group instances consume in"
    )
    bus_tls_ca_file: Path | None = Field(None, description="CA bundle that signed the broker certificate (mqtts://)")
    bus_tls_cert_file: Path | None = Field(None, description="Client certificate for mqtts:// (PEM)")
    bus_tls_key_file: Path | None = Field(None, description="Private key of bus_tls_cert_file (PEM)")
    bus_keepalive_seconds: int = Field(30, ge=5, le=3600, description="MQTT keep-alive interval")
    bus_session_expiry_seconds: int = Field(
        600,
        ge=0,
        description="How long the broker keeps a crashed instance's session and queued events for it "
        "(events it misses are published again from the outbox)",
    )
    bus_inflight_max: int = Field(
        256, ge=1, le=65000, description="QoS 1 publishes awaiting the broker's ack at once (capped by the broker)"
    )
    bus_reconnect_max_seconds: float = Field(30.0, gt=0, description="Cap of the reconnect and relay retry backoff")
    bus_relay_batch_size: int = Field(500, ge=1, le=10000, description="Outbox rows the relay publishes per batch")
    bus_relay_max_undelivered: int = Field(
        1000,
        ge=1,
        description="Events published but not yet stored by a consumer before the relay waits "
        "(keep below the broker's per-client queue, Mosquitto max_queued_messages)",
    )
    bus_relay_poll_seconds: float = Field(
        0.25, gt=0, le=60, description="How often the relay looks for rows committed by other processes"
    )
    bus_redeliver_after_seconds: float = Field(
        60.0, gt=0, description="Publish again an event no consumer stored while newer ones were stored this long"
    )
    bus_handler_attempts: int = Field(5, ge=1, le=100, description="Tries of a failing handler before dead-lettering")
    bus_handler_backoff_seconds: float = Field(0.5, gt=0, description="Delay before a handler's second try")
    bus_handler_backoff_max_seconds: float = Field(30.0, gt=0, description="Cap of the handler retry delay")
    bus_handler_timeout_seconds: float = Field(30.0, gt=0, description="A handler running longer has failed")
    bus_max_payload_bytes: int = Field(
        262_144, ge=1024, le=268_435_455, description="Largest event envelope published or accepted"
    )
    plugins: dict[str, dict[str, Any]] = Field(default_factory=dict, description="Per-plugin settings")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = Path(os.environ.get(CONFIG_FILE_ENV, "taylordash.toml"))
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=toml_path))

    @field_validator("plugins", mode="before")
    @classmethod
    def _lower_plugin_names(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k).lower(): v for k, v in value.items()}
        return value

    @field_validator("database_url", "bus_url", "storage_url")
    @classmethod
    def _valid_url(cls, value: str, info: ValidationInfo) -> str:
        if not value:  # filled with the embedded default once data_dir is known
            return value
        schemes = {"database_url": DATABASE_SCHEMES, "bus_url": BUS_SCHEMES, "storage_url": STORAGE_SCHEMES}
        _check_url(value, schemes[str(info.field_name)], needs_host=False)
        if urlsplit(value).scheme in ("postgresql+asyncpg", "mqtt", "mqtts", "s3"):
            _check_url(value, schemes[str(info.field_name)], needs_host=True)
        return value

    @model_validator(mode="after")
    def _embedded_defaults(self) -> Settings:
        self.data_dir = self.data_dir.expanduser().absolute()
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir / 'taylordash.db'}"
        if not self.storage_url:
            self.storage_url = f"file://{self.data_dir / 'objects'}"
        return self

    @model_validator(mode="after")
    def _bus_tls_pair(self) -> Settings:
        if self.bus_tls_key_file is not None and self.bus_tls_cert_file is None:
            raise ValueError("TD_BUS_TLS_KEY_FILE is set but TD_BUS_TLS_CERT_FILE is not")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def should_migrate_on_start(self) -> bool:
        return self.is_sqlite if self.migrate_on_start is None else self.migrate_on_start

    def signing_key(self) -> bytes:
        """The deployment's secret key; generated into the data dir on first use when not configured."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode()
        key_file = self.data_dir / "secret.key"
        if not key_file.exists():
            key_file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(48))
        return key_file.read_text().strip().encode()

    def plugin_settings(self, name: str) -> dict[str, Any]:
        """Raw settings given for plugin ``name`` (validated by the kernel against its schema)."""
        return dict(self.plugins.get(name.lower(), {}))

    def public_dict(self) -> dict[str, Any]:
        """Settings as plain JSON-able data with every secret masked."""
        data = self.model_dump(mode="json")
        data["secret_key"] = "**********" if self.secret_key is not None else None
        for field in ("database_url", "bus_url", "storage_url"):
            data[field] = mask_url(data[field])
        return data


def _unknown_env_names() -> list[str]:
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    known.add(CONFIG_FILE_ENV)
    unknown = []
    for name in sorted(os.environ):
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper in known or upper.startswith(HARNESS_ENV):
            continue
        if upper.startswith(ENV_PREFIX + "PLUGINS__"):
            continue
        unknown.append(f"{name}: unknown setting (known: {', '.join(sorted(known))})")
    return unknown


def _describe(exc: ValidationError) -> list[str]:
    lines = []
    for err in exc.errors():
        name = ENV_PREFIX + "__".join(str(p) for p in err["loc"]).upper()
        if err["type"] == "extra_forbidden":
            lines.append(f"{name}: unknown setting")
            continue
        msg = str(err["msg"]).removeprefix("Value error, ")
        shown = err.get("input")
        lines.append(
            msg
            if msg.startswith(name)
            else f"{name}: {msg}" + (f" (got {shown!r})" if err["type"] != "value_error" else "")
        )
    return lines


def load_settings(**overrides: Any) -> Settings:
    """Build and validate :class:`Settings`, raising :class:`ConfigError` with one line per problem."""
    problems = _unknown_env_names()
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(problems + _describe(exc)) from None
    except ValueError as exc:  # a malformed taylordash.toml
        raise ConfigError([*problems, f"{os.environ.get(CONFIG_FILE_ENV, 'taylordash.toml')}: {exc}"]) from None
    if problems:
        raise ConfigError(problems)
    return settings
