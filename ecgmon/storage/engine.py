"""Database engine, schema migrations, analyst views and queries, and table access for the
results database."""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, make_url

from ecgmon.errors import ConfigurationError, SchemaError
from ecgmon.resources import migrations_dir, query_file, views_dir

if TYPE_CHECKING:
    from sqlalchemy.engine.interfaces import DBAPIConnection
    from sqlalchemy.pool import ConnectionPoolEntry

log = logging.getLogger(__name__)

TABLES = (
    "model_versions",
    "thresholds",
    "scores",
    "anomalies",
    "rejected_records",
    "ingest_watermarks",
    "pipeline_runs",
)


#: Words that mark a URL query parameter as a secret (``?password=``, ``sslpassword``, ``token``).
SECRET_QUERY_WORDS = ("pass", "pwd", "secret", "token", "key", "credential", "auth")
MASK = "***"


def _secret_parameters(url: sa.URL) -> list[str]:
    return [k for k in url.query if any(w in k.lower() for w in SECRET_QUERY_WORDS)]


def redact_url(url: str) -> str:
    """The URL with any password masked, also in its query (``?password=...``), for logs and
    messages."""
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError:
        return "<unparseable database URL>"
    masked = {name: MASK for name in _secret_parameters(parsed)}
    return parsed.update_query_dict(masked).render_as_string(hide_password=True)


def url_has_secret(url: str) -> bool:
    """Whether a database URL holds a password (in its authority or its query)."""
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError:
        return True  # cannot tell: treat it as secret
    return parsed.password is not None or bool(_secret_parameters(parsed))


#: (what the driver says, what it means for the user), first match wins; the driver's own text is
#: never shown (it may echo parts of the URL)
_CONNECTION_FAILURES = (
    (
        ("authentication failed", "no password supplied", "pg_hba.conf", 'role "'),
        "login refused: the server answered but did not accept the user or password",
    ),
    (
        ('database "',),
        "the server answered but has no such database (create it, or fix its name in the URL)",
    ),
    (
        (
            "connection refused",
            "could not connect",
            "timeout expired",
            "timed out",
            "could not translate host name",
            "name or service not known",
            "no route to host",
            "network is unreachable",
            "connection reset",
            "server closed the connection",
        ),
        "no server: nothing answered at that host and port (is PostgreSQL running there?)",
    ),
    (("unable to open database file",), "cannot open the SQLite file (does its folder exist?)"),
    (("database is locked",), "the SQLite file is locked by another process"),
)


def describe_connection_error(err: BaseException) -> str:
    """Why a database could not be used, in words a user acts on: login refused, no such
    database, no server, or the driver error's type when none of these."""
    origin = getattr(err, "orig", None) or err
    text = str(origin).lower()
    for needles, meaning in _CONNECTION_FAILURES:
        if any(needle in text for needle in needles):
            return meaning
    return type(origin).__name__


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.close()


@lru_cache(maxsize=8)
def create_db_engine(url: str) -> Engine:
    """A pooled engine for ``url``; SQLite files get WAL mode and a busy timeout."""
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError as err:
        raise ConfigurationError(f"{redact_url(url)} is not a valid database URL") from err
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = sa.create_engine(parsed, pool_pre_ping=True)
    except (ImportError, sa.exc.NoSuchModuleError) as err:
        raise ConfigurationError(f"no driver for database URL {redact_url(url)}: {err}") from err
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def upgrade_schema(engine: Engine, revision: str = "head") -> str:
    """Apply migrations up to ``revision`` and (re)create the analyst views; returns the head."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    create_views(engine)
    return current_revision(engine) or "base"


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at, or None before the first migration."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def view_files() -> list[Path]:
    """The analyst view definitions, one ``v_*.sql`` file per view."""
    return sorted(views_dir().glob("v_*.sql"))


_UTC_DAY = re.compile(r"UTC_DAY\(([\w.]+)\)")


def utc_day_sql(column: str, dialect: str) -> str:
    """The UTC day of a timestamp column in ``dialect``, whatever the session's time zone.

    PostgreSQL: ``CAST((col AT TIME ZONE 'UTC') AS DATE)``, a date (an immutable expression:
    indexable). SQLite: ``DATE(col)``, text YYYY-MM-DD; SQLite stores the UTC time as text and
    ``DATE`` applies any offset written with it. Migration 0006 indexes these very expressions."""
    if dialect == "postgresql":
        return f"CAST(({column} AT TIME ZONE 'UTC') AS DATE)"
    return f"DATE({column})"


def render_sql(text: str, dialect: str) -> str:
    """A view or query of sql/ in ``dialect``: each ``UTC_DAY(column)`` written out."""
    return _UTC_DAY.sub(lambda m: utc_day_sql(m.group(1), dialect), text)


def create_views(engine: Engine) -> list[str]:
    """Drop and recreate every analyst view from sql/views/ (views hold no data)."""
    names = []
    with engine.begin() as connection:
        for path in view_files():
            name = path.stem
            connection.exec_driver_sql(f"DROP VIEW IF EXISTS {name}")
            connection.exec_driver_sql(render_sql(path.read_text(), engine.dialect.name))
            names.append(name)
    return names


def run_query(engine: Engine, name: str) -> pd.DataFrame:
    """The result of one of the analysts' example queries (``sql/queries/NAME``)."""
    text = render_sql(query_file(name).read_text(), engine.dialect.name)
    with engine.connect() as connection:
        return pd.read_sql(sa.text(text), connection)


def reflect_tables(engine: Engine) -> sa.MetaData:
    """The schema as it is in the database; a clear error when migrations have not run."""
    metadata = sa.MetaData()
    with warnings.catch_warnings():  # SQLite: the UTC-day indexes (0006) are expressions
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based")
        metadata.reflect(engine, only=lambda name, _meta: name in TABLES)
    missing = [name for name in TABLES if name not in metadata.tables]
    if missing:
        raise SchemaError(
            f"the database {redact_url(str(engine.url))} has no tables {', '.join(missing)}; "
            "run `ecgmon db upgrade` first"
        )
    return metadata


@lru_cache(maxsize=8)
def _cached_tables(engine: Engine) -> sa.MetaData:
    return reflect_tables(engine)


def table(engine: Engine, name: str) -> sa.Table:
    """A reflected table by its contract name."""
    return _cached_tables(engine).tables[name]


def dialect_insert(conn: Connection) -> Callable[[sa.Table], postgresql.Insert | sqlite.Insert]:
    """The ``insert`` of the connection's dialect, whose statements take ``on_conflict_do_*``."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert
    return sqlite.insert
