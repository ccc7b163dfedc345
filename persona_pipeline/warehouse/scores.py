"""Scoring's warehouse side: the population's contacts by contact_id range, and where scored rows go.

Ranges (not hashes) let reads and deletes use the contact_id index: a hash bucket made every bucket's delete
scan the whole table. A destination table persona-pipeline creates on PostgreSQL is partitioned by range
(warehouse.replacement); elsewhere rows replace their slice's previous rows in one transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import IO, Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from persona_pipeline.core.domain import ChangeWindow, Pipeline, ScoringBucket, Watermark
from persona_pipeline.core.model import PersonaModel
from persona_pipeline.core.sql_scoring import scoring_query
from persona_pipeline.warehouse.bulk import read_frame, stream_csv, write_frame
from persona_pipeline.warehouse.engine import quote
from persona_pipeline.warehouse.pipelines import OUTPUT_COLUMNS, require_still_there
from persona_pipeline.warehouse.replacement import create_partitioned
from persona_pipeline.warehouse.tables import score_table

DELETE_CHUNK = 5_000  # contact ids per DELETE ... IN (...) statement


def in_range(column: str, bucket: ScoringBucket) -> tuple[str, dict[str, int]]:
    """A WHERE clause (with its parameters) for the bucket's contact_id range."""
    parts, params = ["1 = 1"], {}
    if bucket.low is not None:
        parts.append(f"{column} >= :low")
        params["low"] = bucket.low
    if bucket.high is not None:
        parts.append(f"{column} < :high")
        params["high"] = bucket.high
    return " AND ".join(parts), params


def contact_id_bounds(
    engine: Engine, bucket: ScoringBucket | None = None
) -> tuple[int | None, int | None, int]:
    """Lowest and highest contact_id among all contacts (or the bucket's), and how many there are."""
    where, params = in_range("contact_id", bucket) if bucket else ("1 = 1", {})
    with engine.connect() as conn:
        low, high, count = conn.execute(
            sa.text(f"SELECT MIN(contact_id), MAX(contact_id), COUNT(*) FROM contacts WHERE {where}"),  # noqa: S608
            params,
        ).one()
    return low, high, int(count)


def _population_sql(engine: Engine, population: list[str], where: str) -> str:
    """The population's contact ids matching `where`: the bucket's range, so each cohort's index limits the scan."""
    union = " UNION ".join(
        f"SELECT contact_id FROM {quote(engine, c)} WHERE {where}"  # noqa: S608 - quoted
        for c in population
    )
    return f"({union})"


def read_population(
    engine: Engine,
    population: list[str],
    traits: list[str],
    bucket: ScoringBucket,
    window: ChangeWindow | None = None,
) -> pd.DataFrame:
    """contact_id, external_id and `traits` of the population's contacts in this range (or changed in the
    window)."""
    columns = ", ".join(f"c.{quote(engine, t)}" for t in ["contact_id", "external_id", *traits])
    where, params = _population_where(engine, population, bucket, window)
    return read_frame(
        engine,
        f"SELECT {columns} FROM contacts c WHERE {where} ORDER BY c.contact_id",  # noqa: S608 - quoted
        params,
        categorical=True,
    )


def _population_where(
    engine: Engine, population: list[str], bucket: ScoringBucket, window: ChangeWindow | None
) -> tuple[str, dict[str, Any]]:
    """The WHERE clause over `contacts c` picking the population's contacts of the bucket (changed in the
    window, when there is one), with its parameters: what read_population reads and warehouse scoring scores."""
    where_range, params = in_range("c.contact_id", bucket)
    where = f"c.contact_id IN {_population_sql(engine, population, in_range('contact_id', bucket)[0])} AND {where_range}"
    if window is not None:
        where += (
            " AND (c.updated_at > :after_time OR (c.updated_at = :after_time AND c.contact_id > :after_id))"
            " AND (c.updated_at < :upto_time OR (c.updated_at = :upto_time AND c.contact_id <= :upto_id))"
        )
        params |= window.as_params()
    return where, params


def score_in_warehouse(
    engine: Engine,
    pipeline: Pipeline,
    sets: list[tuple[str, PersonaModel, dict[int, str]]],
    bucket: ScoringBucket,
    window: ChangeWindow | None = None,
    into: str | None = None,
) -> int:
    """Score the bucket's population (or its contacts changed in the window) with SQL generated from each
    set's model, inside the warehouse, and store the rows in one transaction: into the run's shadow, or in
    place of the bucket's (the changed contacts') previous rows. Returns the number of contacts scored.

    sets: (persona set name, its current model, its persona names by id), in the payload's order.
    """
    internal = not pipeline.destination_table
    table = into or ("pipeline_scores" if internal else pipeline.destination_table)
    name = quote(engine, table)
    where, params = _population_where(engine, pipeline.population, bucket, window)
    scope = "pipeline_id = :pid AND " if internal and into is None else ""
    scored_at = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    columns = [*OUTPUT_COLUMNS, *(["pipeline_id"] if internal else [])]
    with engine.begin() as conn:
        require_still_there(conn, pipeline)
        if into is None:  # replace what this run rescored: the bucket's rows, or the changed contacts' rows
            conn.execute(
                sa.text(
                    f"DELETE FROM {name} WHERE {scope}contact_id IN "  # noqa: S608 - quoted
                    f"(SELECT c.contact_id FROM contacts c WHERE {where})"
                ),
                {"pid": pipeline.id, **params},
            )
        counted = 0
        for index, (set_name, model, names) in enumerate(sets):
            query = scoring_query(
                model,
                names,
                f"contacts c WHERE {where}",
                lambda trait: f"c.{quote(engine, trait)}",
                ["c.contact_id", "c.external_id"],
                prefix=f"s{index}_",
            )
            extra = ", :pid" if internal else ""
            result = conn.execute(
                sa.text(
                    f"INSERT INTO {name} ({', '.join(quote(engine, c) for c in columns)}) "  # noqa: S608 - quoted
                    f"SELECT carried_0, carried_1, :persona_set, persona_id, persona_name, confidence, "
                    f":scored_at{extra} FROM ({query.sql}) scored"
                ),
                {
                    **params,
                    **query.params,
                    "persona_set": set_name,
                    "scored_at": scored_at,
                    "pid": pipeline.id,
                },
            )
            counted = max(counted, result.rowcount)
    return counted


def ensure_destination(engine: Engine, table: str) -> None:
    """Create the destination table once, before buckets run side by side and could race to create it."""
    with engine.begin() as conn:
        if sa.inspect(conn).has_table(table):
            if "external_id" not in {c["name"] for c in sa.inspect(conn).get_columns(table)}:
                conn.execute(
                    sa.text(f"ALTER TABLE {quote(engine, table)} ADD COLUMN external_id VARCHAR(200)")
                )
            return
        if conn.dialect.name == "postgresql":
            create_partitioned(conn, score_table(table, sa.MetaData(), per_pipeline=False, partitioned=True))
        else:
            score_table(table, sa.MetaData(), per_pipeline=False).create(conn)


def store(
    engine: Engine,
    pipeline: Pipeline,
    rows: pd.DataFrame,
    bucket: ScoringBucket,
    only: list[int] | None,
    into: str | None = None,
) -> None:
    """Replace the bucket's rows (or only these contacts' rows) in one transaction; or add them to a shadow.

    rows: one per contact and persona set, OUTPUT_COLUMNS.
    """
    # the destination table is the store when there is one; pipeline_scores keeps the rows of CSV-only pipelines
    internal = not pipeline.destination_table
    table = "pipeline_scores" if internal else pipeline.destination_table
    name = quote(engine, table)
    scope = "pipeline_id = :pid AND " if internal else ""
    with engine.begin() as conn:
        require_still_there(conn, pipeline)
        if into is not None:  # a shadow of this run's, emptied when its bucket began: nothing to replace
            write_frame(conn, into, rows)
            return
        if only is None:
            where, params = in_range("contact_id", bucket)
            statement = sa.text(f"DELETE FROM {name} WHERE {scope}{where}")  # noqa: S608 - quoted
            conn.execute(statement, {"pid": pipeline.id, **params})
        else:
            statement = sa.text(f"DELETE FROM {name} WHERE {scope}contact_id IN :ids").bindparams(  # noqa: S608
                sa.bindparam("ids", expanding=True)
            )
            for start in range(0, len(only), DELETE_CHUNK):
                conn.execute(statement, {"pid": pipeline.id, "ids": only[start : start + DELETE_CHUNK]})
        write_frame(conn, table, rows.assign(pipeline_id=pipeline.id) if internal else rows)


def stream_scores_csv(engine: Engine, pipeline: Pipeline, out: IO[bytes]) -> None:
    """Every stored score of the pipeline as CSV, by contact and persona set, in flat memory."""
    source, scope = (
        (quote(engine, pipeline.destination_table), "")
        if pipeline.destination_table
        else ("pipeline_scores", "WHERE pipeline_id = :pid ")
    )
    stream_csv(
        engine,
        f"SELECT {', '.join(OUTPUT_COLUMNS)} FROM {source} {scope}ORDER BY contact_id, persona_set",  # noqa: S608
        out,
        {"pid": pipeline.id} if scope else None,
    )


def changed_since(engine: Engine, after: Watermark | None, limit: int) -> tuple[Watermark | None, int]:
    """The watermark after the next `limit` contacts changed since `after`, and how many that is."""
    where, params = "", {}
    if after is not None:
        where = "WHERE updated_at > :t OR (updated_at = :t AND contact_id > :i)"
        params = {"t": after.time, "i": after.contact_id}
    frame = read_frame(
        engine,
        f"SELECT updated_at, contact_id FROM contacts {where} ORDER BY updated_at, contact_id LIMIT {int(limit)}",  # noqa: S608
        params,
    )
    if frame.empty:
        return after, 0
    last = frame.iloc[-1]
    return Watermark(pd.Timestamp(last["updated_at"]).to_pydatetime(), int(last["contact_id"])), len(frame)


def example_external_id(engine: Engine) -> str | None:
    """One of the text ids the contacts were loaded with; None when the files' ids were integers."""
    with engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT MIN(external_id) FROM contacts WHERE external_id IS NOT NULL")
        ).scalar_one_or_none()


def _as_contact_id(key: str) -> int | None:
    """The key as an internal contact_id (a BIGINT), or None when it cannot be one."""
    return int(key) if key.strip().isdigit() and int(key) < 2**63 else None


def internal_id_holder(engine: Engine, key: str) -> str | None:
    """The file's key of the contact whose internal contact_id is `key`, if `key` is one."""
    contact_id = _as_contact_id(key)
    if contact_id is None:
        return None
    with engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT external_id FROM contacts WHERE contact_id = :id"), {"id": contact_id}
        ).scalar()


def read_contact(engine: Engine, key: str) -> dict[str, Any] | None:
    """One stored contact's row by its file's key; None when not stored. Where the files had text ids, only
    those count: a number is not taken for some other contact's internal id."""
    with engine.connect() as conn:
        row = (
            conn.execute(sa.text("SELECT * FROM contacts WHERE external_id = :key"), {"key": key})
            .mappings()
            .first()
        )
        contact_id = _as_contact_id(key)
        if row is None and contact_id is not None and example_external_id(engine) is None:
            row = (
                conn.execute(sa.text("SELECT * FROM contacts WHERE contact_id = :id"), {"id": contact_id})
                .mappings()
                .first()
            )
    return dict(row) if row is not None else None
