"""The embedded default's Dagster storage: Dagster's SQLite files and tables, its event log kept open.

Dagster's SQLite event log creates an engine, opens a connection and closes it again for every event it
writes (NullPool): each of a build's ~100 events paid an engine, a file open, a schema read and, on closing,
a checkpoint of the write-ahead log into the file (about 0.9 s of a 50,000-contact build from the command
line, BENCHMARKS.md). Here each database file keeps one engine whose
connection stays open between events (the few most recent run shards; older ones are closed), so an event is
one committed transaction on an open connection. The event then sits in the database's write-ahead log,
not its main file, until the connection closes (at exit); the UI follows a running run by watching that
main file's changes, so each event also touches the file's time (a checkpoint into it instead cost 0.25 s a
build). Files, tables and transactions are Dagster's own: the UI, the daemon, another process and a home
written before this read and write them as before.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from dagster import StringSource
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SQLITE_BUSY_TIMEOUT_SECONDS,
    SqliteEventLogStorage,
)
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import SqliteScheduleStorage
from dagster._core.storage.sqlite_storage import (
    DagsterSqliteStorage,
    _event_logs_directory,
    _runs_directory,
    _schedule_directory,
)
from dagster._serdes import ConfigurableClassData
from sqlalchemy import Connection, Engine, create_engine

OPEN_DATABASES = 8  # per process: the index and the runs being written or watched; the oldest is closed first


class _OpenEngines:
    """One engine per SQLite database file, the `limit` most recently used kept open (a long-lived webserver
    reads thousands of run shards; each open one holds a file)."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._lock = threading.Lock()

    def engine(self, conn_string: str) -> Engine:
        with self._lock:
            engine = self._engines.pop(conn_string, None)
            if engine is None:
                engine = create_engine(conn_string, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})
            self._engines[conn_string] = engine
            while len(self._engines) > self._limit:
                _, oldest = self._engines.popitem(last=False)
                oldest.dispose()
            return engine

    def dispose(self) -> None:
        with self._lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()


class OpenSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's sharded SQLite event log, each shard's connection kept open between events."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        self._open_engines = _OpenEngines(OPEN_DATABASES)  # before Dagster's init, which may reindex
        # closed when the storage goes or at exit, so no database is left with its write-ahead log beside it
        weakref.finalize(self, self._open_engines.dispose)
        super().__init__(base_dir, inst_data)

    @contextlib.contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        """Dagster's `_connect` (one transaction under the storage's lock, the shard created on first use)
        on an engine that outlives it."""
        with self._db_lock:
            engine = self._open_engines.engine(self.conn_string_for_shard(shard))
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn:
                with conn.begin():
                    yield conn
                if shard != INDEX_SHARD_NAME:  # the UI follows a running run by watching its file
                    with contextlib.suppress(FileNotFoundError):  # a run deleted meanwhile
                        os.utime(self.path_for_shard(shard))

    def dispose(self) -> None:
        super().dispose()
        self._open_engines.dispose()


class OpenSqliteStorage(DagsterSqliteStorage):
    """`storage: sqlite:` with the event log above; runs and schedules are Dagster's (a build writes them a
    few times, not per event). Configured by the dagster.yaml persona-pipeline writes (runtime.instance)."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        self.base_dir = base_dir
        self._run_storage = SqliteRunStorage.from_local(_runs_directory(base_dir))
        self._event_log_storage = OpenSqliteEventLogStorage(_event_logs_directory(base_dir))
        self._schedule_storage = SqliteScheduleStorage.from_local(_schedule_directory(base_dir))
        self._inst_data = inst_data
        super(DagsterSqliteStorage, self).__init__()

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {"base_dir": StringSource}

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData, config_value: dict[str, Any]
    ) -> OpenSqliteStorage:
        return cls.from_local(inst_data=inst_data, **config_value)
