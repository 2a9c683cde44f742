"""Where the store lives: a SQLite file (a path) or a PostgreSQL server (a postgresql:// URL).

A ``PostgresUrl`` shows itself with its password masked wherever it is printed, logged or put in
an error message; only ``dsn`` (for the driver) and ``password`` carry the secret.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

SCHEMES: Final = ("postgresql", "postgres")
_MASK: Final = "***"
_SQLITE_URL: Final = "sqlite:///"


class PostgresUrl:
    """A validated ``postgresql://user:password@host:port/dbname`` (or ``?host=/socket/dir``)."""

    __slots__ = ("_dsn", "database", "password")

    def __init__(self, url: str) -> None:
        url = url.strip()
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"{_masked(url)} is not a valid PostgreSQL URL: {exc}") from None
        if parts.scheme not in SCHEMES:
            raise ValueError(f"{_masked(url)} is not a postgresql:// URL")
        if parts.fragment:
            raise ValueError(f"{_masked(url)} must not have a #fragment")
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        database = unquote(parts.path.removeprefix("/")) or query.get("dbname", "")
        if not database or "/" in database:
            raise ValueError(
                f"{_masked(url)} names no database: write postgresql://user:password@host:5432/"
                "dbname or postgresql:///dbname?host=/socket/dir"
            )
        if port == 0:
            raise ValueError(f"{_masked(url)} has port 0")
        self._dsn = url
        self.database = database
        self.password = unquote(parts.password) if parts.password else query.get("password")

    @property
    def dsn(self) -> str:
        """The URL as given, password included: for the driver only, never for output."""
        return self._dsn

    def without_password(self) -> str:
        """The URL with no password at all (for tools that take the password elsewhere)."""
        return _masked(self._dsn, drop=True)

    def __str__(self) -> str:
        return _masked(self._dsn)

    def __repr__(self) -> str:
        return f"PostgresUrl({str(self)!r})"

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[Any], handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        # Dumped (model_dump, JSON) masked like str(): a settings dump never holds the password.
        return core_schema.no_info_after_validator_function(
            lambda value: value,
            core_schema.is_instance_schema(cls),
            serialization=core_schema.to_string_ser_schema(),
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PostgresUrl) and other._dsn == self._dsn

    def __hash__(self) -> int:
        return hash(self._dsn)


def _masked(url: str, *, drop: bool = False) -> str:
    """``url`` with its password (in the authority or ``?password=``) masked, or dropped."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        password = None
        parts = None
    if parts is None:
        # Unparseable: show nothing between "//" and "@", where a password would be.
        head, sep, tail = url.partition("@")
        return (head.split("//")[0] + "//" + _MASK + sep + tail) if sep else url
    netloc = parts.netloc
    if password is not None:
        user, _, host = netloc.rpartition("@")
        name = user.split(":", 1)[0]
        netloc = f"{name}@{host}" if drop else f"{name}:{_MASK}@{host}"
    query = parts.query
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(key == "password" for key, _ in pairs):
        kept = [
            (k, _MASK if k == "password" else v) for k, v in pairs if not drop or k != "password"
        ]
        query = urlencode(kept, safe="*/", quote_via=quote)
    # Built by hand: urlunsplit drops the empty authority of postgresql:///dbname?host=...
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")


def is_postgres_url(value: str) -> bool:
    """Whether ``value`` is meant as a PostgreSQL URL rather than a file path."""
    return value.strip().lower().startswith(tuple(f"{s}:" for s in SCHEMES))


def parse_location(value: str | Path | PostgresUrl) -> Path | PostgresUrl:
    """A setting's value as a SQLite path or a PostgreSQL URL; ValueError (one line, no
    password) for a URL that is malformed or of another database."""
    if isinstance(value, Path | PostgresUrl):
        return value
    if is_postgres_url(value):
        return PostgresUrl(value)
    if value.startswith(_SQLITE_URL) and len(value) > len(_SQLITE_URL):
        # SQLAlchemy's form, which people carry over: sqlite:///rel.db, sqlite:////abs.db
        return Path(value[len(_SQLITE_URL) :])
    scheme = value.split("://", 1)[0] if "://" in value else ""
    if scheme and scheme.replace("+", "").isalpha():
        raise ValueError(
            f"{_masked(value)} is neither a file path (SQLite) nor a postgresql:// URL"
        )
    return Path(value)
