"""One SQLAlchemy engine per URL, and the small dialect differences the rest of the code must not see."""

from __future__ import annotations

import datetime as dt
import os
import weakref
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from persona_pipeline.config import warehouse_url
from persona_pipeline.errors import ConfigError

_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()  # every engine made here, for the fork hook below


def _forget_parents_connections() -> None:
    """In a forked child: drop the pooled connections inherited from the parent, without closing them.

    A connection is one socket; two processes using it interleave their protocol messages (psycopg2 then fails
    with "error with status PGRES_TUPLES_OK and no message from the libpq"). Celery's pool and the
    multiprocess executor fork after the parent used the warehouse, so each child opens its own (SQLAlchemy's
    recipe for pools and multiprocessing: dispose(close=False) leaves the parent's sockets to the parent).
    """
    for engine in list(_ENGINES):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_forget_parents_connections)


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    """One engine (and its connection pool) per URL in this process."""
    engine = _make_engine(url)
    _ENGINES.add(engine)
    return engine


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        _require_usable_file(sa.engine.make_url(url).database)
        engine = sa.create_engine(url, connect_args={"timeout": 60})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):  # noqa: ANN001 - SQLAlchemy's hook signature
            # pysqlite begins a transaction only before INSERT/UPDATE/DELETE, so a DROP or CREATE would commit
            # on its own: SQLAlchemy's recipe turns that off and begins every transaction itself (below)
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _begin(conn):  # noqa: ANN001 - SQLAlchemy's hook signature
            conn.exec_driver_sql("BEGIN")

        @sa.event.listens_for(engine, "before_cursor_execute", retval=True)
        def _datetimes(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001, ANN202, ARG001, PLR0913
            return statement, sqlite_params(parameters)

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


# How SQLAlchemy's typed columns bind a datetime on SQLite, which stores and compares it as text. Untyped
# parameters (sa.text, the raw cursor) go through sqlite3's own adapter, which drops a whole second's
# '.000000': '2030-01-01 00:00:00' sorts before '2030-01-01 00:00:00.000000' and never equals it, so one
# moment bound two ways was missed or taken twice. Every datetime this package binds or writes takes this form.
SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"


def sqlite_params(parameters: Any) -> Any:  # noqa: ANN401 - a DB-API parameter set of any shape
    """The parameters with every datetime in SQLITE_DATETIME form: a mapping, a sequence, or (executemany)
    a sequence of either."""
    if isinstance(parameters, dict):
        return {name: sqlite_params(value) for name, value in parameters.items()}
    if isinstance(parameters, list | tuple):
        return type(parameters)(sqlite_params(value) for value in parameters)
    if isinstance(parameters, dt.datetime):
        return parameters.strftime(SQLITE_DATETIME)
    return parameters


def _require_usable_file(database: str | None) -> None:
    """An empty (0-byte) SQLite file is a truncated warehouse, not a new one: refuse it rather than start over."""
    if database and database != ":memory:" and os.path.isfile(database) and os.path.getsize(database) == 0:
        raise ConfigError(
            f"the embedded warehouse {database} is an empty file (0 bytes): it was truncated or never written. "
            "Restore it from a backup, or delete it to start an empty warehouse"
        )


def normalize_url(url: str) -> str:
    """Plain postgresql:// URLs use psycopg2, whose COPY interface the bulk path relies on."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


def get_engine(url: str | None = None) -> Engine:
    given = normalize_url(url or warehouse_url())
    try:
        return engine_for(given)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        try:
            shown = sa.engine.make_url(given).render_as_string(hide_password=True)  # never echo a password
        except sa.exc.ArgumentError:
            shown = given if "@" not in given else "(unreadable)"
        raise ConfigError(
            f"the warehouse URL {shown!r} cannot be used ({type(exc).__name__}: {exc}); set PERSONA_WAREHOUSE_URL "
            "to a SQLAlchemy URL such as sqlite:////path/warehouse.sqlite or postgresql://user@host:5432/db"
        ) from exc


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def quote(engine: Engine, identifier: str) -> str:
    """An identifier quoted for this dialect: user-supplied names never reach SQL text bare."""
    return engine.dialect.identifier_preparer.quote_identifier(identifier)


def describe(engine: Engine) -> str:
    """The URL without its password, for messages and metadata."""
    return engine.url.render_as_string(hide_password=True)


def forget_engines() -> None:
    """Forget the cached engines (a test's private warehouse goes away; its engine was disposed)."""
    engine_for.cache_clear()
