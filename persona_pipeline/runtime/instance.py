"""The Dagster instance the CLI and the UI share: DAGSTER_HOME (default: the persona home's dagster folder)."""

from __future__ import annotations

import functools
import time

from dagster import DagsterInstance

from persona_pipeline import files
from persona_pipeline.config import use_dagster_home

DEFAULT_DAGSTER_YAML = """# Written by persona-pipeline for the embedded default: SQLite storage in this folder (Dagster's files,
# its event log kept open between writes: persona_pipeline/runtime/sqlite_storage.py).
# For PostgreSQL storage, use deploy/dagster.yaml instead.
storage:
  custom:
    module: persona_pipeline.runtime.sqlite_storage
    class: OpenSqliteStorage
    config:
      base_dir:
        env: DAGSTER_HOME
telemetry:
  enabled: false
"""
# What earlier versions wrote: a home still holding one of these gets the default above (same files).
EARLIER_DEFAULT_DAGSTER_YAMLS = (
    """# Written by persona-pipeline for the embedded default: SQLite storage in this folder.
# For PostgreSQL storage, use deploy/dagster.yaml instead.
telemetry:
  enabled: false
""",
)


def instance() -> DagsterInstance:
    """The instance at DAGSTER_HOME, one per home per process; a default dagster.yaml is written if none (or
    if it is an earlier version's default, never when a user edited it)."""
    home = use_dagster_home()
    config = home / "dagster.yaml"
    if not config.exists() or config.read_text(encoding="utf-8") in EARLIER_DEFAULT_DAGSTER_YAMLS:
        files.write_text(config, DEFAULT_DAGSTER_YAML)
    return _instance_at(str(home))


@functools.lru_cache(maxsize=4)
def _instance_at(home: str) -> DagsterInstance:  # noqa: ARG001 - the cache key: one instance per home
    return DagsterInstance.get()


DAEMON_FRESH_SECONDS = 120  # a sensor daemon heartbeat older than this: the daemon is not running


def sensor_daemon_running() -> bool:
    """Whether a Dagster daemon evaluates sensors for this instance now (a recent SENSOR heartbeat): without
    one, a queued rebuild waits until it starts."""
    beats = instance().get_daemon_heartbeats()
    beat = beats.get("SENSOR")
    return beat is not None and time.time() - beat.timestamp < DAEMON_FRESH_SECONDS
