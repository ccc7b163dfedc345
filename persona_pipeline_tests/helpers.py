"""Helpers the tests share: where things are, row counts, stored scores, one sensor tick."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from persona_pipeline.warehouse.bulk import read_frame

PG_URL = os.environ.get("PERSONA_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
REPO = Path(__file__).resolve().parent.parent
END_DATE = dt.date(2026, 11, 1)


@contextlib.contextmanager
def postgres_schema() -> Iterator[str]:
    """A warehouse URL on the shared PostgreSQL whose objects live in a schema of their own, dropped after."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL)
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def stored_scores(engine: Engine, table: str = "pipeline_scores") -> pd.DataFrame:
    """A scoring destination's rows (the internal store of CSV-only pipelines by default)."""
    return read_frame(
        engine,
        f'SELECT contact_id, persona_set, persona_id, persona_name, confidence, scored_at FROM "{table}"',  # noqa: S608
    )


def table_rows(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(f'SELECT COUNT(*) FROM "{table}"')).scalar_one())


def sensor_tick(name: str, cursor: str | None = None):  # noqa: ANN201 - the sensor's own result type
    """One evaluation of a sensor of the Definitions, as the daemon would run it, before it launches anything."""
    from dagster import build_sensor_context

    from persona_pipeline.definitions import make_definitions
    from persona_pipeline.defs.shared.resources import WarehouseResource
    from persona_pipeline.runtime.instance import instance

    definitions = make_definitions()
    context = build_sensor_context(
        instance=instance(),
        resources={"warehouse": WarehouseResource()},
        definitions=definitions,
        cursor=cursor,
    )
    return definitions.resolve_sensor_def(name)(context)
