"""Scoring pipelines: a population (cohorts, unioned) scored with a payload (persona sets) into destinations.

Scoring is split into buckets, ranges of contact_id fixed at the start of a run, so runs can fan out.
Ranges (not hashes) let reads and deletes use the contact_id index: a hash bucket made every bucket's delete
scan the whole table. Where the rows go keeps a rerun after a crash free of duplicates and gaps:

- a full run into a destination table persona-pipeline created on PostgreSQL fills one shadow table per
  bucket and swaps them in as the table's partitions at the end (warehouse.replacement): a run that dies
  changes nothing;
- otherwise (SQLite, a table that was there before, the internal store of CSV-only pipelines, and runs over
  changed contacts) each slice's rows replace that slice's previous rows in one transaction.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from threadpoolctl import threadpool_limits

from persona_pipeline.core.lineage import PipelineRef
from persona_pipeline.core.model import PersonaModel
from persona_pipeline.settings import persona_home, score_buckets
from persona_pipeline.sql_models import discover, refresh_stale, require_cohort
from persona_pipeline.warehouse import persona_sets as store
from persona_pipeline.warehouse.bulk import read_frame, stream_csv, write_frame
from persona_pipeline.warehouse.engine import quote
from persona_pipeline.warehouse.replacement import (
    STALE_AFTER,
    Bucket,
    Replacement,
    create_partitioned,
    drop_shadows,
    is_partitioned,
    prepare_shadow,
    shadow_name,
    swap_in,
    unattached_shadows,
)
from persona_pipeline.warehouse.tables import SOURCE_TABLES, ensure_catalog_tables, metadata, score_table
from persona_pipeline.warehouse.tables import pipeline_scores as scores_table
from persona_pipeline.warehouse.tables import pipelines as pipelines_table

SLICE_CONTACTS = 65_536  # contacts per slice of a bucket: what one thread holds in memory, at any scale
SIDE_BY_SIDE = 2  # slices read ahead, and written behind, while a bucket assigns the next
# a swap waits this long at a time for queries on the destination to finish (and readers queued behind its
# lock request wait no longer), then lets them through and tries again
SWAP_LOCK_WAIT = dt.timedelta(seconds=2)
SWAP_ATTEMPTS = 60
TRIGGERS = ("ad_hoc", "schedule", "on_change")
TABLE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
SCORE_COLUMNS = ["contact_id", "persona_set", "persona_id", "persona_name", "confidence", "scored_at"]


class PipelineError(ValueError):
    """A pipeline that cannot be created or run as asked; the message says what to change."""


@dataclass(frozen=True)
class Pipeline:
    id: int
    name: str
    population: list[str]
    payload: list[int]
    trigger: str
    cron: str | None
    destination_table: str | None
    destination_csv: str | None
    created_at: dt.datetime
    last_run_at: dt.datetime | None

    def ref(self, set_names: dict[int, str]) -> PipelineRef:
        return PipelineRef(
            self.name, tuple(self.population), tuple(set_names.get(i, str(i)) for i in self.payload)
        )


def exports_dir() -> Path:
    """The only folder CSV destinations may write into (PERSONA_EXPORT_DIR, default PERSONA_HOME/exports)."""
    folder = Path(os.environ.get("PERSONA_EXPORT_DIR") or persona_home() / "exports").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def valid_cron(expression: str) -> bool:
    from dagster._utils.schedules import is_valid_cron_string

    return is_valid_cron_string(expression)


def _record(row: Any) -> Pipeline:
    return Pipeline(
        row.id,
        row.name,
        json.loads(row.population),
        json.loads(row.payload),
        row.trigger,
        row.cron,
        row.destination_table,
        row.destination_csv,
        row.created_at,
        row.last_run_at,
    )


def create(
    engine: Engine,
    name: str,
    population: list[str],
    payload: list[str],
    trigger: str = "ad_hoc",
    cron: str | None = None,
    destination_table: str | None = None,
    destination_csv: str | None = None,
) -> Pipeline:
    ensure_catalog_tables(engine)
    clean = name.strip()
    if not clean or len(clean) > 200:
        raise PipelineError("a pipeline needs a name of 1 to 200 characters")
    if not population:
        raise PipelineError("a pipeline needs a population: --population cohort[,cohort]")
    models = discover()
    for cohort in population:
        require_cohort(models, cohort)
    if not payload:
        raise PipelineError("a pipeline needs a payload: --payload persona-set[,persona-set]")
    set_ids = [store.get(engine, s).id for s in payload]
    if trigger not in TRIGGERS:
        raise PipelineError(f"--trigger must be one of {', '.join(TRIGGERS)}, not {trigger!r}")
    if trigger == "schedule" and not (cron and valid_cron(cron)):
        raise PipelineError(
            f"{cron!r} is not a valid cron expression (five fields, e.g. '0 2 * * *' for 02:00 daily)"
        )
    if trigger != "schedule" and cron:
        raise PipelineError("--cron goes with --trigger schedule")
    if not destination_table and not destination_csv:
        raise PipelineError("a pipeline needs a destination: --table NAME and/or --csv FILE")
    if destination_table and (
        not TABLE_NAME.match(destination_table) or destination_table in _reserved_tables()
    ):
        raise PipelineError(
            f"{destination_table!r} cannot be a destination table: use lower case letters, digits and '_', "
            "and not the name of one of persona-pipeline's own tables"
        )
    csv_path = None
    if destination_csv:
        csv_path = (exports_dir() / destination_csv).resolve()
        if not csv_path.is_relative_to(exports_dir()):
            raise PipelineError(
                f"{destination_csv!r} is outside the export folder {exports_dir()}; give a path inside it"
            )
    with engine.begin() as conn:
        if conn.execute(sa.select(pipelines_table.c.id).where(pipelines_table.c.name == clean)).first():
            raise PipelineError(f"a pipeline named {clean!r} exists already")
        _require_free_destinations(conn, destination_table, str(csv_path) if csv_path else None)
        conn.execute(
            pipelines_table.insert().values(
                name=clean,
                population=json.dumps(population),
                payload=json.dumps(set_ids),
                trigger=trigger,
                cron=cron,
                destination_table=destination_table,
                destination_csv=str(csv_path) if csv_path else None,
                created_at=dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0),
            )
        )
    return get(engine, clean)


def _require_free_destinations(conn: sa.Connection, table: str | None, csv: str | None) -> None:
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


def _reserved_tables() -> set[str]:
    return set(metadata.tables) | set(SOURCE_TABLES) | {"hidden_segments"} | set(discover())


def get(engine: Engine, name: str) -> Pipeline:
    ensure_catalog_tables(engine)
    with engine.connect() as conn:
        row = conn.execute(sa.select(pipelines_table).where(pipelines_table.c.name == name)).first()
    if row is None:
        raise PipelineError(f"no pipeline named {name!r}; see persona-pipeline pipeline list")
    return _record(row)


def list_all(engine: Engine) -> list[Pipeline]:
    ensure_catalog_tables(engine)
    with engine.connect() as conn:
        return [_record(r) for r in conn.execute(sa.select(pipelines_table).order_by(pipelines_table.c.id))]


def refs(engine: Engine) -> list[PipelineRef]:
    """Every pipeline as the lineage guard sees it."""
    names = {r.id: r.name for r in store.list_all(engine)}
    return [p.ref(names) for p in list_all(engine)]


def delete(engine: Engine, name: str) -> None:
    """Remove a pipeline and its stored scores (its destination table and CSV stay: they are the user's)."""
    pipeline = get(engine, name)
    with engine.begin() as conn:
        # the pipeline row first: it waits for a bucket being written (see _store), whose rows the next
        # statement then sees and removes, so a racing run leaves nothing behind
        conn.execute(pipelines_table.delete().where(pipelines_table.c.id == pipeline.id))
        conn.execute(scores_table.delete().where(scores_table.c.pipeline_id == pipeline.id))
        # shadows are runs' leftovers, not the user's scores, and no run of this pipeline will swap them in
        table = pipeline.destination_table
        if table and is_partitioned(conn, table):
            drop_shadows(conn, table, before=dt.datetime.max)


def _population_sql(engine: Engine, pipeline: Pipeline, where: str) -> str:
    """The population's contact ids matching `where`: the bucket's range, so each cohort's index limits the scan."""
    union = " UNION ".join(
        f"SELECT contact_id FROM {quote(engine, c)} WHERE {where}"  # noqa: S608 - quoted
        for c in pipeline.population
    )
    return f"({union})"


def plan(
    engine: Engine, pipeline: Pipeline, buckets: int | None = None, say: Callable[[str], None] | None = None
) -> list[Bucket]:
    """Split the contact_id space into ranges; the outer ones are open so contacts added meanwhile are covered.

    The population's SQL models are brought up to date first (usually nothing to do), so a run the sensor
    launches for new contacts finds them in their cohorts.

    Each bucket is a step of the run (a process under the multiprocess executor, a pod under Kubernetes'), so
    the count is the fan-out: one per core by default. Slices, not buckets, bound memory.

    The destination table is created here, once, before buckets run side by side and could race to create it.
    """
    rebuilt = refresh_stale(engine, pipeline.population)
    if rebuilt and say:
        say(f"rebuilt the population's SQL models whose SQL or sources changed: {', '.join(rebuilt)}")
    if pipeline.destination_table:
        with engine.begin() as conn:
            _ensure_destination(conn, pipeline.destination_table)
    with engine.connect() as conn:
        low, high = conn.execute(sa.text("SELECT MIN(contact_id), MAX(contact_id) FROM contacts")).one()
    if low is None:
        return [(0, None, None)]
    buckets = buckets or score_buckets()
    edges = [int(low + (high + 1 - low) * i / buckets) for i in range(1, buckets)]
    bounds = [None, *edges, None]
    return [(i, bounds[i], bounds[i + 1]) for i in range(buckets)]


def _range(column: str, bucket: Bucket) -> tuple[str, dict[str, int]]:
    _, low, high = bucket
    parts, params = ["1 = 1"], {}
    if low is not None:
        parts.append(f"{column} >= :low")
        params["low"] = low
    if high is not None:
        parts.append(f"{column} < :high")
        params["high"] = high
    return " AND ".join(parts), params


@dataclass(frozen=True)
class _Payload:
    sets: list[store.PersonaSet]
    models: dict[int, PersonaModel]
    names: dict[int, dict[int, str]]


def _payload(engine: Engine, pipeline: Pipeline) -> _Payload:
    sets = [store.get_by_id(engine, i) for i in pipeline.payload]
    for record in sets:
        if record.status != "ready" and record.current_build is None:
            raise PipelineError(
                f"persona set {record.name!r} of pipeline {pipeline.name!r} has never been built"
            )
    models = {r.id: PersonaModel.from_json(store.latest_build(engine, r.id)["model"]) for r in sets}
    names = {r.id: {p["persona_id"]: p["name"] for p in store.read_personas(engine, r.id)} for r in sets}
    return _Payload(sets, models, names)


def _slices(engine: Engine, bucket: Bucket) -> list[Bucket]:
    """The bucket cut into id ranges of about SLICE_CONTACTS contacts, at least two (open ends stay open)."""
    in_range, params = _range("contact_id", bucket)
    with engine.connect() as conn:
        low, high, count = conn.execute(
            sa.text(f"SELECT MIN(contact_id), MAX(contact_id), COUNT(*) FROM contacts WHERE {in_range}"),  # noqa: S608
            params,
        ).one()
    return cut_bucket(bucket, low, high, count)


def cut_bucket(bucket: Bucket, low: int | None, high: int | None, count: int) -> list[Bucket]:
    """Contiguous ranges covering the bucket exactly, cut evenly between its lowest and highest contact id."""
    parts = max(SIDE_BY_SIDE, -(-count // SLICE_CONTACTS))
    if low is None or high is None or high - low < parts:
        return [bucket]
    cuts = [low + (high + 1 - low) * i // parts for i in range(1, parts)]
    bounds = [bucket[1], *cuts, bucket[2]]
    return [(bucket[0], bounds[i], bounds[i + 1]) for i in range(parts)]


def score_bucket(
    engine: Engine,
    pipeline: Pipeline,
    bucket: Bucket,
    changed: tuple[dt.datetime, int, dt.datetime, int] | None = None,
    replacement: Replacement | None = None,
) -> int:
    """Score one bucket of the population (or only contacts changed in a window) and store the rows.

    With a `replacement` (a full run, see start_replacement), the rows go to the bucket's shadow table,
    which finish_run swaps in; otherwise they replace the stored rows slice by slice.

    A whole bucket is scored in slices, each written in its own transaction, as a pipeline: up to two
    slices are being read and two written while this thread assigns the next, so the warehouse's reads and
    writes and this process's arithmetic overlap (slices scored in lockstep left the warehouse idle while
    they were assigned), and memory stays the same at any population size.
    """
    payload = _payload(engine, pipeline)
    if changed is not None:
        frame = _read_range(engine, pipeline, payload, bucket, changed)
        _store(engine, pipeline, _score_rows(payload, frame), bucket, frame["contact_id"].tolist())
        return len(frame)
    into = None
    if replacement is not None:
        with engine.begin() as conn:
            into = prepare_shadow(conn, pipeline.destination_table, replacement, bucket)
    slices = iter(_slices(engine, bucket))
    scored = 0
    # slices already keep both cores busy: BLAS's own threads would only spin against them (and the
    # warehouse) - its matrix product then took 45 ms per slice instead of 1
    with (
        threadpool_limits(1, "blas"),
        ThreadPoolExecutor(SIDE_BY_SIDE) as readers,
        ThreadPoolExecutor(SIDE_BY_SIDE) as writers,
    ):
        reads = deque(
            (part, readers.submit(_read_range, engine, pipeline, payload, part, None))
            for part in islice(slices, SIDE_BY_SIDE)
        )
        writes: deque[Future[None]] = deque()
        while reads:
            part, reading = reads.popleft()
            frame = reading.result()
            following = next(slices, None)
            if following is not None:
                reads.append(
                    (following, readers.submit(_read_range, engine, pipeline, payload, following, None))
                )
            rows = _score_rows(payload, frame)
            while len(writes) >= SIDE_BY_SIDE:
                writes.popleft().result()
            writes.append(writers.submit(_store, engine, pipeline, rows, part, None, into))
            scored += len(frame)
        for writing in writes:
            writing.result()
    return scored


def _read_range(
    engine: Engine,
    pipeline: Pipeline,
    payload: _Payload,
    bucket: Bucket,
    changed: tuple[dt.datetime, int, dt.datetime, int] | None,
) -> pd.DataFrame:
    """The traits the payload needs of the population's contacts in this range (or changed in the window)."""
    traits = sorted({t for m in payload.models.values() for t in m.transform.trait_names})
    columns = ", ".join(f"c.{quote(engine, t)}" for t in ["contact_id", *traits])
    in_range, params = _range("c.contact_id", bucket)
    where = (
        f"c.contact_id IN {_population_sql(engine, pipeline, _range('contact_id', bucket)[0])} AND {in_range}"
    )
    if changed is not None:
        where += (
            " AND (c.updated_at > :after_time OR (c.updated_at = :after_time AND c.contact_id > :after_id))"
            " AND (c.updated_at < :upto_time OR (c.updated_at = :upto_time AND c.contact_id <= :upto_id))"
        )
        params |= dict(zip(("after_time", "after_id", "upto_time", "upto_id"), changed, strict=True))
    return read_frame(
        engine,
        f"SELECT {columns} FROM contacts c WHERE {where} ORDER BY c.contact_id",  # noqa: S608 - quoted
        params,
        categorical=True,
    )


def _score_rows(payload: _Payload, frame: pd.DataFrame) -> pd.DataFrame:
    """One output row per contact and persona set of the payload."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    parts = []
    for record in payload.sets:
        persona, confidence = payload.models[record.id].assign(frame) if len(frame) else ([], [])
        ids = np.asarray(persona, dtype=np.int32)
        part = pd.DataFrame(
            {
                "contact_id": frame["contact_id"].to_numpy(),
                "persona_set": pd.Categorical.from_codes(np.zeros(len(ids), np.int8), [record.name]),
                "persona_id": ids,
                "persona_name": _names_of(ids, payload.names[record.id]),
                "confidence": np.round(np.asarray(confidence, dtype="float64"), 4),
                "scored_at": now,
            }
        )
        parts.append(part[SCORE_COLUMNS])
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=SCORE_COLUMNS)


def _names_of(ids: np.ndarray, names: dict[int, str]) -> pd.Categorical:
    """Each persona id's name as a category (the writer then encodes each name once); unknown ids: missing."""
    known = np.array(sorted(names), dtype=np.int64)
    levels = sorted(set(names.values()))
    level_of_known = np.array([levels.index(names[i]) for i in known.tolist()] + [-1])
    position = np.searchsorted(known, ids)
    found = position < len(known)
    found[found] = known[position[found]] == ids[found]
    return pd.Categorical.from_codes(level_of_known[np.where(found, position, len(known))], levels)


def _store(
    engine: Engine,
    pipeline: Pipeline,
    rows: pd.DataFrame,
    bucket: Bucket,
    only: list[int] | None,
    into: str | None = None,
) -> None:
    """Replace the bucket's rows (or only these contacts' rows) in one transaction; or add them to a shadow."""
    # the destination table is the store when there is one; pipeline_scores keeps the rows of CSV-only pipelines
    internal = not pipeline.destination_table
    table = "pipeline_scores" if internal else pipeline.destination_table
    name = quote(engine, table)
    scope = "pipeline_id = :pid AND " if internal else ""
    with engine.begin() as conn:
        _require_still_there(conn, pipeline)
        if into is not None:  # a shadow of this run's, emptied when its bucket began: nothing to replace
            write_frame(conn, into, rows)
            return
        if only is None:
            in_range, params = _range("contact_id", bucket)
            statement = sa.text(f"DELETE FROM {name} WHERE {scope}{in_range}")  # noqa: S608 - quoted
            conn.execute(statement, {"pid": pipeline.id, **params})
        else:
            statement = sa.text(f"DELETE FROM {name} WHERE {scope}contact_id IN :ids").bindparams(  # noqa: S608
                sa.bindparam("ids", expanding=True)
            )
            for start in range(0, len(only), 5_000):
                conn.execute(statement, {"pid": pipeline.id, "ids": only[start : start + 5_000]})
        write_frame(conn, table, rows.assign(pipeline_id=pipeline.id) if internal else rows)


def _require_still_there(conn: sa.Connection, pipeline: Pipeline) -> None:
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


def _ensure_destination(conn: sa.Connection, table: str) -> None:
    if sa.inspect(conn).has_table(table):
        return
    if conn.dialect.name == "postgresql":
        create_partitioned(conn, score_table(table, sa.MetaData(), per_pipeline=False, partitioned=True))
    else:
        score_table(table, sa.MetaData(), per_pipeline=False).create(conn)


def start_replacement(engine: Engine, pipeline: Pipeline, token: str | None = None) -> Replacement | None:
    """A full run's shadows, where its destination is partitioned (after plan created it); else None.

    `token` names the shadows (run_token of a Dagster run; random without one). Shadows a dead run left
    behind (started over an hour before this one) are dropped here.
    """
    table = pipeline.destination_table
    if not table:
        return None
    with engine.begin() as conn:
        if not is_partitioned(conn, table):
            return None
        since = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
        drop_shadows(conn, table, before=since - STALE_AFTER)
    return Replacement(token or uuid.uuid4().hex[:8], since)


def run_token(run_id: str) -> str:
    """The shadow token of a Dagster run, so whoever sees the run fail can find its shadows by the run."""
    return run_id.replace("-", "")[:8]


def abandon_run(engine: Engine, name: str, token: str) -> list[str]:
    """Drop a failed full run's shadows now rather than an hour later; returns their names.

    Nothing the run swapped in is touched: only tables still waiting to be attached.
    """
    try:
        table = get(engine, name).destination_table
    except PipelineError:
        return []  # deleted: a run of it drops its shadows when it finds the pipeline gone
    if not table:
        return []
    with engine.begin() as conn:
        return drop_shadows(conn, table, token=token) if is_partitioned(conn, table) else []


def finish_run(
    engine: Engine,
    pipeline: Pipeline,
    replacement: Replacement | None = None,
    buckets: list[Bucket] | None = None,
) -> Path | None:
    """After every bucket: swap a full run's shadows in, write the CSV destination (atomically), record the run."""
    if replacement is not None:
        _swap(engine, pipeline, replacement, buckets or [])
    path = None
    if pipeline.destination_csv:
        path = Path(pipeline.destination_csv)
        temporary = path.with_suffix(path.suffix + ".partial")
        path.parent.mkdir(parents=True, exist_ok=True)
        with temporary.open("wb") as handle:
            source, scope = (
                (quote(engine, pipeline.destination_table), "")
                if pipeline.destination_table
                else ("pipeline_scores", "WHERE pipeline_id = :pid ")
            )
            stream_csv(
                engine,
                f"SELECT {', '.join(SCORE_COLUMNS)} FROM {source} {scope}ORDER BY contact_id, persona_set",  # noqa: S608
                handle,
                {"pid": pipeline.id} if scope else None,
            )
        os.replace(temporary, path)
    with engine.begin() as conn:
        conn.execute(
            pipelines_table.update()
            .where(pipelines_table.c.id == pipeline.id)
            .values(last_run_at=dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0))
        )
    return path


def run(
    engine: Engine,
    name: str,
    say: Callable[[str], None] = print,
    changed: tuple[dt.datetime, int, dt.datetime, int] | None = None,
) -> int:
    """Score the whole population (or the changed contacts) bucket by bucket, in this process."""
    pipeline = get(engine, name)
    total = 0
    buckets = plan(engine, pipeline)
    replacement = start_replacement(engine, pipeline) if changed is None else None
    for bucket in buckets:
        total += score_bucket(engine, pipeline, bucket, changed=changed, replacement=replacement)
        say(f"  bucket {bucket[0] + 1}/{len(buckets)}: {total:,} contacts scored")
    finish_run(engine, pipeline, replacement, buckets)
    return total


def payload_builds(engine: Engine, pipeline: Pipeline) -> list[tuple[int, int]] | None:
    """(persona set id, current build) for the payload, or None while any of its sets has never been built."""
    builds = [(i, store.get_by_id(engine, i).current_build) for i in pipeline.payload]
    return None if any(b is None for _, b in builds) else builds


def changed_since(
    engine: Engine, after: tuple[dt.datetime, int] | None, limit: int
) -> tuple[tuple[dt.datetime, int] | None, int]:
    """The watermark after the next `limit` contacts changed since `after`, and how many that is."""
    where, params = "", {}
    if after is not None:
        where = "WHERE updated_at > :t OR (updated_at = :t AND contact_id > :i)"
        params = {"t": after[0], "i": after[1]}
    frame = read_frame(
        engine,
        f"SELECT updated_at, contact_id FROM contacts {where} ORDER BY updated_at, contact_id LIMIT {int(limit)}",  # noqa: S608
        params,
    )
    if frame.empty:
        return after, 0
    last = frame.iloc[-1]
    return (pd.Timestamp(last["updated_at"]).to_pydatetime(), int(last["contact_id"])), len(frame)


def _swap(engine: Engine, pipeline: Pipeline, replacement: Replacement, buckets: list[Bucket]) -> None:
    """The run's shadows become the destination's partitions, unless the pipeline was deleted meanwhile."""
    table = pipeline.destination_table
    if not buckets:  # detaching every partition and attaching none would leave the table unwritable
        raise ValueError("a run's shadows are swapped in with the buckets that filled them")
    try:
        for _ in range(SWAP_ATTEMPTS):
            try:
                with engine.begin() as conn:
                    _require_still_there(conn, pipeline)
                    waiting = {name for name, _ in unattached_shadows(conn, table)}
                    missing = [
                        b[0] for b in buckets if shadow_name(table, replacement.token, b[0]) not in waiting
                    ]
                    if missing:
                        raise PipelineError(
                            f"the rows of bucket(s) {', '.join(map(str, missing))} of this run of "
                            f"{pipeline.name!r} are gone from the warehouse (a later run cleared them); "
                            f"{table!r} keeps its previous scores: run the pipeline again"
                        )
                    swap_in(conn, table, replacement, buckets, lock_wait=SWAP_LOCK_WAIT)
                return
            except sa.exc.OperationalError as exc:
                # only lock_not_available (a query holds the table) is worth another try
                if getattr(exc.orig, "pgcode", None) != "55P03":
                    raise
                time.sleep(0.2)  # the readers that queued behind the swap's lock request go first
        raise PipelineError(
            f"{table!r} stayed in use by other queries through {SWAP_ATTEMPTS} tries to swap this run's scores "
            f"in ({SWAP_LOCK_WAIT.total_seconds():g} s each); it keeps its previous scores and this run's were "
            "discarded: run the pipeline again when the long queries on it are done"
        )
    except PipelineError:
        with engine.begin() as conn:
            drop_shadows(conn, table, token=replacement.token)
        raise
