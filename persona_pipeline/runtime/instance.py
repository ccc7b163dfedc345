"""The Dagster instance the CLI and the UI share: DAGSTER_HOME (default: the persona home's dagster folder)."""

from __future__ import annotations

import functools
import time

from dagster import DagsterInstance

from persona_pipeline.config import use_dagster_home

DEFAULT_DAGSTER_YAML = """# Written by persona-pipeline for the embedded default: SQLite storage in this folder.
# For PostgreSQL storage, use deploy/dagster.yaml instead.
telemetry:
  enabled: false
"""


def instance() -> DagsterInstance:
    """The instance at DAGSTER_HOME, one per home per process; a default dagster.yaml is written if none."""
    home = use_dagster_home()
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DEFAULT_DAGSTER_YAML, encoding="utf-8")
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
