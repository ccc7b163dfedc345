"""Where things live: one home folder for the embedded warehouse, Dagster's storage, models and outputs."""

from __future__ import annotations

import os
from pathlib import Path


def persona_home() -> Path:
    home = Path(os.environ.get("PERSONA_HOME", ".persona_home")).resolve()
    home.mkdir(parents=True, exist_ok=True)
    return home


def warehouse_url() -> str:
    """PERSONA_WAREHOUSE_URL, or the embedded SQLite file in the home folder."""
    url = os.environ.get("PERSONA_WAREHOUSE_URL", "").strip()
    return url or f"sqlite:///{persona_home() / 'warehouse.sqlite'}"


def dagster_home() -> Path:
    """DAGSTER_HOME, defaulting to a folder in the home so runs from the CLI show up in `dagster dev`."""
    path = Path(os.environ.get("DAGSTER_HOME") or persona_home() / "dagster").resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def builds_dir() -> Path:
    path = persona_home() / "builds"
    path.mkdir(parents=True, exist_ok=True)
    return path


def score_buckets(in_process: bool = False) -> int:
    """Buckets a scoring run fans out over: one per core here (PERSONA_SCORE_BUCKETS: more, for more workers).

    A run whose steps execute one after another in one process (the CLI's) gets one bucket by default: more
    would add steps, and a pause between them, without adding workers (each bucket already uses both cores).
    """
    value = os.environ.get("PERSONA_SCORE_BUCKETS", "").strip()
    if not value:
        return 1 if in_process else max(2, os.cpu_count() or 2)
    if not value.isdigit() or not 1 <= int(value) <= 1024:
        raise ValueError(f"PERSONA_SCORE_BUCKETS must be a whole number from 1 to 1024, not {value!r}")
    return int(value)


def sensor_interval(default: int) -> int:
    """Seconds between a sensor's ticks: PERSONA_SENSOR_INTERVAL overrides every sensor's default."""
    value = os.environ.get("PERSONA_SENSOR_INTERVAL", "").strip()
    if not value:
        return default
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"PERSONA_SENSOR_INTERVAL must be a whole number of seconds, not {value!r}")
    return int(value)
