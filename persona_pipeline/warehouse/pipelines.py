"""Scoring pipelines' catalog rows (SQLAlchemy only): what each pipeline scores, with what, and into where."""

from __future__ import annotations

import datetime as dt
import json
import unicodedata
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from persona_pipeline.core.domain import Pipeline, ScoringEngine, Trigger, did_you_mean, name_key
from persona_pipeline.errors import PipelineError
from persona_pipeline.warehouse.persona_sets import now
from persona_pipeline.warehouse.replacement import drop_shadows, is_partitioned
from persona_pipeline.warehouse.tables import ensure_catalog_tables
from persona_pipeline.warehouse.tables import pipeline_scores as scores_table
from persona_pipeline.warehouse.tables import pipelines as pipelines_table

SCORE_COLUMNS = ["contact_id", "persona_set", "persona_id", "persona_name", "confidence", "scored_at"]
# What a run writes: also each contact's own text key from its file (empty for integer-keyed bases). A table
# made before the key existed is given the column on its next run; SCORE_COLUMNS are what one must have.
OUTPUT_COLUMNS = ["contact_id", "external_id", *SCORE_COLUMNS[1:]]


def _record(row: Any) -> Pipeline:
    return Pipeline(
        id=row.id,
        name=row.name,
        population=json.loads(row.population),
        payload=json.loads(row.payload),
        trigger=Trigger(row.trigger),
        cron=row.cron,
        destination_table=row.destination_table,
        destination_csv=row.destination_csv,
        created_at=row.created_at,
        last_run_at=row.last_run_at,
        score_in=ScoringEngine(row.score_in or ScoringEngine.PYTHON),
    )


def insert(
    engine: Engine,
    name: str,
    population: list[str],
    payload: list[int],
    trigger: Trigger,
    cron: str | None,
    destination_table: str | None,
    destination_csv: str | None,
    score_in: ScoringEngine = ScoringEngine.PYTHON,
) -> Pipeline:
    """Store a pipeline the service validated; its name and destinations must be free."""
    ensure_catalog_tables(engine)
    with engine.begin() as conn:
        same = [
            n
            for n in conn.execute(sa.select(pipelines_table.c.name)).scalars()
            if name_key(n) == name_key(name)
        ]
        if same:
            raise PipelineError(f"a pipeline named {same[0]!r} exists already (case and composition aside)")
        _require_free_destinations(conn, destination_table, destination_csv)
        conn.execute(
            pipelines_table.insert().values(
                name=name,
                population=json.dumps(population),
                payload=json.dumps(payload),
                trigger=trigger.value,
                cron=cron,
                destination_table=destination_table,
                destination_csv=destination_csv,
                created_at=now(),
                score_in=score_in.value,
            )
        )
    return get(engine, name)


def _require_free_destinations(conn: Connection, table: str | None, csv: str | None) -> None:
    """Two pipelines writing one destination would replace each other's rows bucket by bucket: refuse."""
    for column, value, what in (
        (pipelines_table.c.destination_table, table, "table"),
        (pipelines_table.c.destination_csv, csv, "CSV file"),
    ):
        if value is None:
            continue
        owner = conn.execute(sa.select(pipelines_table.c.name).where(column == value)).scalar()
        if owner is not None:
            raise PipelineError(
                f"the {what} {value!r} is already the destination of pipeline {owner!r}; give each pipeline "
                "its own destination (or add this payload to that pipeline)"
            )
    if table and sa.inspect(conn).has_table(table):
        present = {c["name"] for c in sa.inspect(conn).get_columns(table)}
        missing = [c for c in SCORE_COLUMNS if c not in present]
        if missing:
            raise PipelineError(
                f"table {table!r} exists and is not a scoring destination (it lacks {', '.join(missing)}); "
                "name a new table, which the first run creates"
            )


def get(engine: Engine, name: str) -> Pipeline:
    ensure_catalog_tables(engine)
    name = unicodedata.normalize("NFC", name)  # names are stored composed
    with engine.connect() as conn:
        row = conn.execute(sa.select(pipelines_table).where(pipelines_table.c.name == name)).first()
        if row is None:
            known = conn.execute(sa.select(pipelines_table.c.name)).scalars().all()
            same = [k for k in known if name_key(k) == name_key(name)]  # names are unique ignoring case
            if len(same) == 1:
                row = conn.execute(
                    sa.select(pipelines_table).where(pipelines_table.c.name == same[0])
                ).first()
    if row is None:
        raise PipelineError(
            f"no pipeline named {name!r}{did_you_mean(name, known)}; see persona-pipeline pipeline list"
        )
    return _record(row)


def list_all(engine: Engine) -> list[Pipeline]:
    ensure_catalog_tables(engine)
    with engine.connect() as conn:
        return [_record(r) for r in conn.execute(sa.select(pipelines_table).order_by(pipelines_table.c.id))]


def delete(engine: Engine, pipeline: Pipeline) -> None:
    """Remove a pipeline and its stored scores (its destination table and CSV stay: they are the user's)."""
    with engine.begin() as conn:
        # the pipeline row first: it waits for a bucket being written (see require_still_there), whose rows
        # the next statement then sees and removes, so a racing run leaves nothing behind
        conn.execute(pipelines_table.delete().where(pipelines_table.c.id == pipeline.id))
        conn.execute(scores_table.delete().where(scores_table.c.pipeline_id == pipeline.id))
        # shadows are runs' leftovers, not the user's scores, and no run of this pipeline will swap them in
        table = pipeline.destination_table
        if table and is_partitioned(conn, table):
            drop_shadows(conn, table, before=dt.datetime.max)


def require_still_there(conn: Connection, pipeline: Pipeline) -> None:
    """Hold the pipeline's row for this transaction (a delete waits for it), or fail if it was deleted."""
    query = sa.select(pipelines_table.c.id).where(pipelines_table.c.id == pipeline.id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(read=True)
    else:  # SQLite: take the write lock now, so a delete cannot slip in between this check and the write
        conn.execute(pipelines_table.update().where(pipelines_table.c.id == -1).values(name=""))
    if conn.execute(query).first() is None:
        raise PipelineError(
            f"pipeline {pipeline.name!r} was deleted while this run was scoring it; this bucket wrote nothing"
        )


def mark_run(engine: Engine, pipeline: Pipeline) -> None:
    """Record that a run of the pipeline finished now."""
    with engine.begin() as conn:
        conn.execute(
            pipelines_table.update().where(pipelines_table.c.id == pipeline.id).values(last_run_at=now())
        )
