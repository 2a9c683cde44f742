"""pydantic-settings `Settings`, nested sections; the only reader of the environment and config/.

Precedence: keyword arguments > environment (``BOT_`` prefix, ``__`` between nested names) >
secrets in ``/run/secrets`` > ``config/bot.toml`` (or the file named by ``BOT_CONFIG``).
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from bot.errors import ConfigError
from bot.logs import LEVELS
from bot.search.matcher import MatchSettings
from bot.store.url import PostgresUrl, parse_location

REPO_ROOT = Path(__file__).resolve().parent.parent
ROLES = ("updates", "alerts")


def _json_or_comma_list(value: object) -> object:
    """A list setting as people write it: JSON (``["a", "b"]``) or ``a, b`` (or ``a b``)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f'not valid JSON ({exc}); write it as ["a", "b"] or a, b') from None
    return [part for part in re.split(r"[,\s]+", text) if part]


TextList = Annotated[list[str], NoDecode, BeforeValidator(_json_or_comma_list)]
"""A list of words in one variable: BOT_ADMINS=telegram:1,matrix:@a:b or a JSON list."""


DEFAULT_CONFIG = Path("config/bot.toml")
_TOML_WHERE = re.compile(r"^(?P<msg>.*) \(at line (?P<line>\d+), column (?P<column>\d+)\)$")


def _config_file() -> Path:
    return Path(os.environ.get("BOT_CONFIG") or DEFAULT_CONFIG)


def _toml_source(settings_cls: type[BaseSettings]) -> TomlConfigSettingsSource:
    """The config file as a settings source; a file named by BOT_CONFIG must exist and parse."""
    named = bool(os.environ.get("BOT_CONFIG"))
    path = _existing(_config_file())
    if path.is_dir():
        raise ConfigError(f"BOT_CONFIG: the config file {path} is a directory")
    if named and not path.is_file():
        raise ConfigError(f"BOT_CONFIG: there is no config file {path}")
    try:
        return TomlConfigSettingsSource(settings_cls, toml_file=path)
    except tomllib.TOMLDecodeError as exc:
        where = _TOML_WHERE.match(str(exc))
        if where:
            raise ConfigError(
                f"config file {path}, line {where['line']}, column {where['column']}: "
                f"invalid TOML: {where['msg']}"
            ) from None
        raise ConfigError(f"config file {path}: invalid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path}: not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise ConfigError(f"cannot read the config file {path}: {exc.strerror or exc}") from None


def _existing(path: Path) -> Path:
    """A relative path as given if it exists from here, else relative to the repository."""
    if path.is_absolute() or path.exists():
        return path
    beside_code = REPO_ROOT / path
    return beside_code if beside_code.exists() else path


class Section(BaseModel):
    """Base of the nested settings sections."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class KnowledgeSettings(Section):
    """Where the curated knowledge files and the seed texts (for verbatim checks) are."""

    directory: Path = Path("knowledge")
    seeds_dir: Path | None = Path("../shared/seeds")

    @field_validator("directory")
    @classmethod
    def _resolve(cls, value: Path) -> Path:
        return _existing(value)


class TelegramSettings(Section):
    """Telegram transport; it runs only when ``token`` is set."""

    token: SecretStr | None = None
    base_url: str = "https://api.telegram.org/bot"
    base_file_url: str | None = None
    webhook_url: str | None = None
    webhook_path: str = "telegram"
    listen: str = "127.0.0.1"
    port: int = Field(default=8443, ge=1, le=65535)
    secret_token: SecretStr | None = None
    poll_timeout: int = Field(default=30, ge=0, le=60)
    request_timeout: float = Field(default=10.0, gt=0, le=120)
    rate_limit: bool = Field(
        default=True,
        description="PTB's AIORateLimiter on outgoing calls (at alerts.telegram_per_second)",
    )

    @property
    def configured(self) -> bool:
        return self.token is not None and bool(self.token.get_secret_value().strip())

    @model_validator(mode="after")
    def _webhook_needs_a_secret(self) -> TelegramSettings:
        # Without it anyone who finds the address can post forged updates, an admin's included.
        secret = self.secret_token.get_secret_value().strip() if self.secret_token else ""
        if self.webhook_url and not secret:
            raise ValueError(
                "webhook mode needs BOT_TELEGRAM__SECRET_TOKEN (telegram.secret_token), "
                "which Telegram sends with every update"
            )
        return self


class MatrixSettings(Section):
    """Matrix transport; it runs only when homeserver, user id and a token or password are set."""

    homeserver: str | None = None
    user_id: str | None = None
    access_token: SecretStr | None = None
    password: SecretStr | None = None
    device_id: str | None = None
    device_name: str = "advocacy-fact-bot"
    encryption: bool = Field(
        default=True,
        description="end-to-end encryption when matrix-nio's e2e extra is installed; its keys "
        "are kept in matrix-store/ beside the database",
    )
    allowed_inviters: TextList = Field(
        default_factory=list,
        description="user ids (@u:server) or server names (:server) whose invites are accepted; "
        "empty: the homeserver of the bot",
    )

    @property
    def configured(self) -> bool:
        return bool(self.homeserver and self.user_id and (self.access_token or self.password))


class AlertSettings(Section):
    """Rates and retries of the alert outbox."""

    telegram_per_second: float = Field(default=25.0, gt=0)
    telegram_chat_interval: float = Field(default=1.0, ge=0)
    telegram_group_per_minute: int = Field(default=20, ge=1)
    matrix_per_second: float = Field(default=5.0, gt=0)
    max_attempts: int = Field(default=8, ge=1)
    max_backoff: float = Field(default=300.0, gt=0)
    delivered_retention_days: int = Field(default=7, ge=0)


class PrivacySettings(Section):
    """How long what people asked us to keep is kept."""

    pending_question_days: int = Field(
        default=30, ge=1, le=365, description="a question waiting for an answer is forgotten after"
    )


class HttpSettings(Section):
    """The operations endpoint (/healthz, /readyz, /metrics) and, with ``public_pages``, the
    read-only pages of the knowledge base; off unless ``port`` is set."""

    host: str = "127.0.0.1"
    port: int | None = Field(default=None, ge=1, le=65535)
    public_pages: bool = Field(
        default=False, description="serve the knowledge base as read-only HTML pages"
    )
    public_url: str | None = Field(
        default=None,
        description="public base address of the pages, e.g. https://example.org/facts/ behind a "
        "reverse proxy; its path is the prefix of every link",
    )

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http(s) address such as https://example.org/")
        if parts.query or parts.fragment:
            raise ValueError(f"{value!r} must not have a query or a fragment")
        return value


class Settings(BaseSettings):
    """Every setting of the bot, documented in the README."""

    model_config = SettingsConfigDict(
        env_prefix="BOT_",
        env_nested_delimiter="__",
        secrets_dir="/run/secrets" if Path("/run/secrets").is_dir() else None,
        extra="ignore",
        frozen=True,
    )

    database: Path | PostgresUrl = Field(
        default=Path("data/bot.sqlite3"),
        description="a SQLite file, or postgresql://user:password@host:port/dbname",
    )
    data_dir: Path | None = Field(
        default=None,
        description="local files (vector cache, Matrix keys); default: the SQLite file's "
        "directory, or data/ with PostgreSQL",
    )
    default_language: str = Field(default="en", pattern="^(en|ru|be)$")
    admins: TextList = Field(default_factory=list)
    log_format: str = Field(default="text", pattern="^(text|json)$")
    log_level: str = Field(default="INFO", description="one of " + ", ".join(LEVELS))
    pseudonym_key: SecretStr | None = None
    declined_retention_days: int = Field(default=90, ge=1)
    max_message_chars: int = Field(default=1000, ge=50)
    questions_per_minute: int = Field(
        default=20, ge=1, description="per sender on Telegram and Matrix (the terminal has none)"
    )
    roles: TextList = Field(
        default_factory=lambda: list(ROLES),
        description='what this process does: "updates" (answer the platforms), "alerts" '
        "(deliver the outbox), or both",
    )
    knowledge: KnowledgeSettings = KnowledgeSettings()
    search: MatchSettings = MatchSettings()
    telegram: TelegramSettings = TelegramSettings()
    matrix: MatrixSettings = MatrixSettings()
    alerts: AlertSettings = AlertSettings()
    http: HttpSettings = HttpSettings()
    privacy: PrivacySettings = PrivacySettings()

    @field_validator("database", mode="before")
    @classmethod
    def _path_or_url(cls, value: object) -> object:
        return parse_location(value) if isinstance(value, str | Path | PostgresUrl) else value

    @property
    def local_dir(self) -> Path:
        """Where the bot keeps local files: ``data_dir``, else beside a SQLite file, else data/."""
        if self.data_dir is not None:
            return self.data_dir
        return self.database.parent if isinstance(self.database, Path) else Path("data")

    @model_validator(mode="after")
    def _vector_cache_beside_database(self) -> Settings:
        if self.search.vector_cache is None and self.search.embedder != "none":
            cache = self.local_dir / "vectors.sqlite3"
            object.__setattr__(
                self, "search", self.search.model_copy(update={"vector_cache": cache})
            )
        return self

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.upper() not in LEVELS:
            raise ValueError(f"{value!r} is not a log level: use one of {', '.join(LEVELS)}")
        return value

    @field_validator("roles")
    @classmethod
    def _known_roles(cls, value: list[str]) -> list[str]:
        for role in value:
            if role not in ROLES:
                raise ValueError(f"{role!r} is not a role: use updates, alerts or updates,alerts")
        if not value:
            raise ValueError("a process needs a role: use updates, alerts or updates,alerts")
        return list(dict.fromkeys(value))

    @field_validator("admins")
    @classmethod
    def _platform_ids(cls, value: list[str]) -> list[str]:
        for admin in value:
            platform, _, ident = admin.partition(":")
            if platform not in ("telegram", "matrix", "console") or not ident:
                raise ValueError(
                    f"admin {admin!r} must be 'telegram:<numeric id>' or 'matrix:@user:server'"
                )
            if platform == "telegram" and not ident.isdigit():
                raise ValueError(f"telegram admin {admin!r} must be a numeric user id")
        return value

    @classmethod
    def from_environment(cls) -> Settings:
        """Read every source; a bad setting raises ConfigError naming its variable, in one line."""
        try:
            return cls()
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            message = first["msg"].removeprefix("Value error, ")
            field = f" ({where})" if where else ""
            raise ConfigError(
                f"invalid setting {_env_name(first['loc'])}{field}: {message}"
            ) from None
        except SettingsError as exc:
            raise ConfigError(_undecodable(exc)) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = _toml_source(settings_cls)
        return (init_settings, env_settings, file_secret_settings, toml)


def _env_name(loc: tuple[int | str, ...]) -> str:
    """The variable of a settings location: ("telegram", "port") -> BOT_TELEGRAM__PORT."""
    names: list[str] = []
    for part in loc:
        if not isinstance(part, str):
            break  # an index into a list: the variable holds the whole list
        names.append(part.upper())
    return "BOT_" + "__".join(names) if names else "BOT_*"


def _json_kind(name: str) -> str | None:
    """ "list" or "section" when the variable ``name`` must hold JSON (pydantic-settings decodes
    lists and sections), else None."""
    fields = Settings.model_fields
    parts = name.upper().removeprefix("BOT_").lower().split("__")
    for depth, part in enumerate(parts):
        field = fields.get(part)
        if field is None:
            return None
        nested = getattr(field.annotation, "model_fields", None)
        if depth == len(parts) - 1:
            if nested is not None or str(field.annotation).startswith("dict"):
                return "section"
            return "list" if str(field.annotation).startswith(("list", "set", "tuple")) else None
        if nested is None:
            return None
        fields = nested
    return None


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _undecodable(exc: SettingsError) -> str:
    """One line for a value pydantic-settings could not decode: JSON of a list or a section."""
    match = re.search(r'field "(\w+)" from source "(\w+)"', str(exc))
    if match is None:
        return f"invalid settings: {exc}"
    field, source = match.groups()
    prefix = f"BOT_{field.upper()}"
    names = sorted(
        k for k in os.environ if k.upper() == prefix or k.upper().startswith(prefix + "__")
    )
    culprit = next(
        (n for n in names if _json_kind(n) and not _is_json(os.environ[n])),
        names[0] if names else prefix,
    )
    origin = "" if source == "EnvSettingsSource" else f" (from {source})"
    cause = f" ({exc.__cause__})" if exc.__cause__ else ""
    example = {
        "list": '["a", "b"], or [] for none',
        "section": '{"key": "value"}',
    }.get(_json_kind(culprit) or "", '["a", "b"] for a list, {"key": "value"} for a section')
    return f"invalid setting {culprit}{origin}: not valid JSON{cause}; write it as {example}"
