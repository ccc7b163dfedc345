"""Deleting persona sets, cohorts and pipelines behind the lineage guard: refused while anything consumes them."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from dagster import DagsterRun, RunsFilter
from sqlalchemy.engine import Engine

from persona_pipeline.core.lineage import Consumer, cohort_consumers, guard, persona_set_consumers
from persona_pipeline.defs.killed_runs import fail_killed_runs
from persona_pipeline.defs.persona_sets.partitions import partition_key, persona_set_partitions
from persona_pipeline.defs.scoring.jobs import SCORE_JOB, pipeline_of
from persona_pipeline.defs.shared.runs import UNFINISHED_RUN_STATUSES
from persona_pipeline.runtime.instance import instance
from persona_pipeline.scoring import pipelines
from persona_pipeline.sql_models import discover, require_cohort
from persona_pipeline.studies.report import default_report_path
from persona_pipeline.warehouse import persona_sets as store
from persona_pipeline.warehouse.engine import quote


def delete_persona_set(engine: Engine, name: str) -> list[str]:
    """Delete a persona set's catalog row and stored results, its Dagster partition and its report.

    Refused while a pipeline's payload holds it.
    """
    record = store.get(engine, name)
    key = partition_key(record.id)
    guard(
        f"persona set {record.name!r}",
        persona_set_consumers(record.name, pipelines.refs(engine)),
        (
            "A pipeline's payload cannot be edited: delete those pipelines first (persona-pipeline pipeline "
            "delete NAME) and create them again with another payload if they are still wanted."
        ),
    )
    guard(
        f"persona set {record.name!r}",
        [
            Consumer("Dagster run", run.run_id, f"{run.job_name} running on it now")
            for run in _runs_in_progress(tags={"dagster/partition": key})
        ],
        "Wait for the run to finish, or terminate it in the Dagster UI, then delete again.",
    )
    report = default_report_path(record)
    store.delete(engine, record.id)
    removed = [f"persona set {record.name!r} and its stored results"]
    dagster = instance()
    if dagster.has_dynamic_partition(persona_set_partitions.name, key):
        dagster.delete_dynamic_partition(persona_set_partitions.name, key)
        removed.append(f"Dagster partition {key}")
    if report.exists():
        report.unlink()
        removed.append(f"report {report}")
    return removed


def delete_cohort(engine: Engine, cohort: str) -> list[str]:
    """Delete a cohort model: its table is dropped and its SQL file kept beside it as <name>.sql.deleted."""
    models = discover()
    model = require_cohort(models, cohort)
    guard(
        f"cohort {cohort!r}",
        cohort_consumers(
            cohort,
            [(r.name, r.cohort) for r in store.list_all(engine)],
            pipelines.refs(engine),
            {name: m.refs for name, m in models.items()},
        ),
        "Delete those consumers or point them elsewhere (persona-set update --cohort, pipeline delete) first.",
    )
    removed = []
    with engine.begin() as conn:
        if sa.inspect(conn).has_table(cohort):
            conn.execute(sa.text(f"DROP TABLE {quote(engine, cohort)}"))
            removed.append(f"table {cohort}")
    kept = Path(f"{model.path}.deleted")
    model.path.rename(kept)
    removed.append(f"model file (kept as {kept})")
    return removed


def _runs_in_progress(job_name: str | None = None, tags: dict[str, str] | None = None) -> list[DagsterRun]:
    """Unfinished runs, once those a killed CLI process left behind are marked failed (they hold nothing up)."""
    dagster = instance()
    fail_killed_runs(dagster)
    return dagster.get_runs(RunsFilter(job_name=job_name, tags=tags or {}, statuses=UNFINISHED_RUN_STATUSES))


def running_scoring_runs(name: str) -> list[str]:
    """Ids of the score_pipeline runs in progress for this pipeline, however they were launched."""
    return [run.run_id for run in _runs_in_progress(SCORE_JOB) if pipeline_of(run.run_config) == name]


def delete_pipeline(engine: Engine, name: str) -> list[str]:
    """Delete a pipeline and its internally kept scores; refused while a run is scoring it."""
    pipeline = pipelines.get(engine, name)
    guard(
        f"pipeline {pipeline.name!r}",
        [Consumer("Dagster run", run_id, "scoring it now") for run_id in running_scoring_runs(pipeline.name)],
        "Wait for the run to finish, or terminate it in the Dagster UI, then delete again.",
    )
    pipelines.delete(engine, pipeline.name)
    return [f"pipeline {pipeline.name!r} and its stored scores (its destination table and CSV stay)"]
