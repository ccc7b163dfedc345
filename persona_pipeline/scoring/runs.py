"""Scoring runs: plan the buckets, score each in slices, finish (swap, CSV, record).

Scoring is split into buckets, ranges of contact_id fixed at the start of a run, so runs can fan out. Where the
rows go keeps a rerun after a crash free of duplicates and gaps:

- a full run into a destination table persona-pipeline created on PostgreSQL fills one shadow table per
  bucket and swaps them in as the table's partitions at the end (warehouse.replacement): a run that dies
  changes nothing;
- otherwise (SQLite, a table that was there before, the internal store of CSV-only pipelines, and runs over
  changed contacts) each slice's rows replace that slice's previous rows in one transaction.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from threadpoolctl import threadpool_limits

from persona_pipeline import files
from persona_pipeline.config import score_buckets
from persona_pipeline.core.domain import (
    ChangeWindow,
    PersonaSet,
    Pipeline,
    ScoringBucket,
    ScoringEngine,
    names_by_id,
)
from persona_pipeline.core.model import PersonaModel
from persona_pipeline.errors import PipelineError
from persona_pipeline.scoring.pipelines import get
from persona_pipeline.sql_models import refresh_stale
from persona_pipeline.warehouse import persona_sets as sets_store
from persona_pipeline.warehouse import pipelines as store
from persona_pipeline.warehouse import scores
from persona_pipeline.warehouse.pipelines import OUTPUT_COLUMNS
from persona_pipeline.warehouse.replacement import (
    STALE_AFTER,
    Replacement,
    drop_shadows,
    is_partitioned,
    prepare_shadow,
    shadow_name,
    swap_in,
    unattached_shadows,
)

SLICE_CONTACTS = 65_536  # contacts per slice of a bucket: what one thread holds in memory, at any scale
SIDE_BY_SIDE = 2  # slices read ahead, and written behind, while a bucket assigns the next
# a swap waits this long at a time for queries on the destination to finish (and readers queued behind its
# lock request wait no longer), then lets them through and tries again
SWAP_LOCK_WAIT = dt.timedelta(seconds=2)
SWAP_ATTEMPTS = 60


def plan(
    engine: Engine, pipeline: Pipeline, buckets: int | None = None, say: Callable[[str], None] | None = None
) -> list[ScoringBucket]:
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
        scores.ensure_destination(engine, pipeline.destination_table)
    low, high, _ = scores.contact_id_bounds(engine)
    if low is None:
        return [ScoringBucket(0, None, None)]
    buckets = buckets or score_buckets()
    edges = [int(low + (high + 1 - low) * i / buckets) for i in range(1, buckets)]
    bounds = [None, *edges, None]
    return [ScoringBucket(i, bounds[i], bounds[i + 1]) for i in range(buckets)]


@dataclass(frozen=True)
class Payload:
    """The persona sets a run scores with: each set's current model and its personas' names."""

    sets: list[PersonaSet]
    models: dict[int, PersonaModel]
    names: dict[int, dict[int, str]]

    @property
    def traits(self) -> list[str]:
        return sorted({t for m in self.models.values() for t in m.transform.trait_names})


def load_payload(engine: Engine, pipeline: Pipeline) -> Payload:
    """Each payload set's current build (never a newer build that did not land) with its own names."""
    sets = [sets_store.get_by_id(engine, i) for i in pipeline.payload]
    models, names = {}, {}
    for record in sets:
        build = sets_store.current_build(engine, record)
        if build is None:
            raise PipelineError(
                f"persona set {record.name!r} of pipeline {pipeline.name!r} has never been built"
            )
        models[record.id] = PersonaModel.from_json(build.model)
        names[record.id] = names_by_id(sets_store.read_personas(engine, record.id))
    return Payload(sets, models, names)


def cut_bucket(bucket: ScoringBucket, low: int | None, high: int | None, count: int) -> list[ScoringBucket]:
    """Contiguous ranges covering the bucket exactly, cut evenly between its lowest and highest contact id."""
    parts = max(SIDE_BY_SIDE, -(-count // SLICE_CONTACTS))
    if low is None or high is None or high - low < parts:
        return [bucket]
    cuts = [low + (high + 1 - low) * i // parts for i in range(1, parts)]
    bounds = [bucket.low, *cuts, bucket.high]
    return [ScoringBucket(bucket.index, bounds[i], bounds[i + 1]) for i in range(parts)]


def score_bucket(
    engine: Engine,
    pipeline: Pipeline,
    bucket: ScoringBucket,
    window: ChangeWindow | None = None,
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
    payload = load_payload(engine, pipeline)
    if pipeline.score_in is ScoringEngine.WAREHOUSE:
        into = None
        if replacement is not None and window is None:
            with engine.begin() as conn:
                into = prepare_shadow(conn, pipeline.destination_table, replacement, bucket)
        sets = [(r.name, payload.models[r.id], payload.names[r.id]) for r in payload.sets]
        if into is None:  # rows replaced in place: one transaction for the bucket
            return scores.score_in_warehouse(engine, pipeline, sets, bucket, window, into)
        # into a shadow, which only the swap makes visible: slices in separate statements, side by side, so
        # the warehouse works on more than one core (a single INSERT ... SELECT runs on one)
        parts = cut_bucket(bucket, *scores.contact_id_bounds(engine, bucket))
        with ThreadPoolExecutor(SIDE_BY_SIDE) as workers:
            done = [
                workers.submit(scores.score_in_warehouse, engine, pipeline, sets, part, None, into)
                for part in parts
            ]
            return sum(f.result() for f in done)

    def read(part: ScoringBucket, changed: ChangeWindow | None = None) -> pd.DataFrame:
        return scores.read_population(engine, pipeline.population, payload.traits, part, changed)

    if window is not None:
        frame = read(bucket, window)
        scores.store(engine, pipeline, score_rows(payload, frame), bucket, frame["contact_id"].tolist())
        return len(frame)
    into = None
    if replacement is not None:
        with engine.begin() as conn:
            into = prepare_shadow(conn, pipeline.destination_table, replacement, bucket)
    slices = iter(cut_bucket(bucket, *scores.contact_id_bounds(engine, bucket)))
    scored = 0
    # slices already keep both cores busy: BLAS's own threads would only spin against them (and the
    # warehouse) - its matrix product then took 45 ms per slice instead of 1
    with (
        threadpool_limits(1, "blas"),
        ThreadPoolExecutor(SIDE_BY_SIDE) as readers,
        ThreadPoolExecutor(SIDE_BY_SIDE) as writers,
    ):
        reads = deque((part, readers.submit(read, part)) for part in islice(slices, SIDE_BY_SIDE))
        writes: deque[Future[None]] = deque()
        while reads:
            part, reading = reads.popleft()
            frame = reading.result()
            following = next(slices, None)
            if following is not None:
                reads.append((following, readers.submit(read, following)))
            rows = score_rows(payload, frame)
            while len(writes) >= SIDE_BY_SIDE:
                writes.popleft().result()
            writes.append(writers.submit(scores.store, engine, pipeline, rows, part, None, into))
            scored += len(frame)
        for writing in writes:
            writing.result()
    return scored


def score_rows(payload: Payload, frame: pd.DataFrame) -> pd.DataFrame:
    """One output row per contact and persona set of the payload (OUTPUT_COLUMNS)."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    parts = []
    for record in payload.sets:
        persona, confidence = payload.models[record.id].assign(frame) if len(frame) else ([], [])
        ids = np.asarray(persona, dtype=np.int32)
        part = pd.DataFrame(
            {
                "contact_id": frame["contact_id"].to_numpy(),
                "external_id": frame["external_id"].to_numpy() if "external_id" in frame else None,
                "persona_set": pd.Categorical.from_codes(np.zeros(len(ids), np.int8), [record.name]),
                "persona_id": ids,
                "persona_name": _names_of(ids, payload.names[record.id]),
                "confidence": np.round(np.asarray(confidence, dtype="float64"), 4),
                "scored_at": now,
            }
        )
        parts.append(part[OUTPUT_COLUMNS])
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=OUTPUT_COLUMNS)


def _names_of(ids: np.ndarray, names: dict[int, str]) -> pd.Categorical:
    """Each persona id's name as a category (the writer then encodes each name once); unknown ids: missing.

    ids: (n,) int persona ids.
    """
    known = np.array(sorted(names), dtype=np.int64)
    levels = sorted(set(names.values()))
    level_of_known = np.array([levels.index(names[i]) for i in known.tolist()] + [-1])
    position = np.searchsorted(known, ids)
    found = position < len(known)
    found[found] = known[position[found]] == ids[found]
    return pd.Categorical.from_codes(level_of_known[np.where(found, position, len(known))], levels)


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
    buckets: list[ScoringBucket] | None = None,
) -> Path | None:
    """After every bucket: swap a full run's shadows in, write the CSV destination (atomically), record the run."""
    if replacement is not None:
        _swap(engine, pipeline, replacement, buckets or [])
    path = None
    if pipeline.destination_csv:
        path = Path(pipeline.destination_csv)
        with files.atomic_output(path) as handle:
            scores.stream_scores_csv(engine, pipeline, handle)
    store.mark_run(engine, pipeline)
    return path


def run(
    engine: Engine,
    name: str,
    say: Callable[[str], None] = print,
    window: ChangeWindow | None = None,
) -> int:
    """Score the whole population (or the changed contacts) bucket by bucket, in this process, without Dagster."""
    pipeline = get(engine, name)
    total = 0
    buckets = plan(engine, pipeline)
    replacement = start_replacement(engine, pipeline) if window is None else None
    for bucket in buckets:
        total += score_bucket(engine, pipeline, bucket, window=window, replacement=replacement)
        say(f"  bucket {bucket.index + 1}/{len(buckets)}: {total:,} contacts scored")
    finish_run(engine, pipeline, replacement, buckets)
    return total


changed_since = scores.changed_since  # the watermark after the next `limit` changed contacts, and their count


def _swap(engine: Engine, pipeline: Pipeline, replacement: Replacement, buckets: list[ScoringBucket]) -> None:
    """The run's shadows become the destination's partitions, unless the pipeline was deleted meanwhile."""
    table = pipeline.destination_table
    if not buckets:  # detaching every partition and attaching none would leave the table unwritable
        raise ValueError("a run's shadows are swapped in with the buckets that filled them")
    try:
        for _ in range(SWAP_ATTEMPTS):
            try:
                with engine.begin() as conn:
                    store.require_still_there(conn, pipeline)
                    waiting = {name for name, _ in unattached_shadows(conn, table)}
                    missing = [
                        b.index
                        for b in buckets
                        if shadow_name(table, replacement.token, b.index) not in waiting
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
