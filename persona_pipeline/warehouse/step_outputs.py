"""Step outputs kept in the warehouse, so steps on hosts that share no disk can hand data to each other.

A step's output is written whole in one transaction (a retried step replaces what a killed attempt left) and
read by the next step wherever it runs. Outputs older than OUTPUT_DAYS go as new ones arrive: re-executing a
run from the UI needs its upstream outputs only while that run is recent.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from persona_pipeline.errors import BuildError
from persona_pipeline.warehouse.tables import ensure_catalog_tables, step_outputs

OUTPUT_DAYS = 14


def save(engine: Engine, key: str, payload: bytes) -> None:
    """Store `payload` under `key`, replacing any earlier one, and drop outputs older than OUTPUT_DAYS."""
    ensure_catalog_tables(engine)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with engine.begin() as conn:
        conn.execute(sa.delete(step_outputs).where(step_outputs.c.output_key == key))
        conn.execute(sa.insert(step_outputs).values(output_key=key, payload=payload, written_at=now))
        cutoff = now - dt.timedelta(days=OUTPUT_DAYS)
        conn.execute(sa.delete(step_outputs).where(step_outputs.c.written_at < cutoff))


def load(engine: Engine, key: str) -> bytes:
    """The payload stored under `key`; a missing one is an error that says what to re-run."""
    ensure_catalog_tables(engine)
    with engine.connect() as conn:
        payload = conn.execute(
            sa.select(step_outputs.c.payload).where(step_outputs.c.output_key == key)
        ).scalar()
    if payload is None:
        raise BuildError(
            f"no step output {key!r} in the warehouse's step_outputs table (outputs are kept {OUTPUT_DAYS} "
            "days): materialize the upstream asset again, or re-execute the whole run"
        )
    return bytes(payload)
