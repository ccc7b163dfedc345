"""Run Dagster jobs in process against the persistent instance, so CLI builds show up in `dagster dev`."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from dagster import (
    AssetKey,
    DagsterUnknownPartitionError,
    ExecuteInProcessResult,
    JobExecutionResult,
    RunsFilter,
)

from persona_pipeline import errors
from persona_pipeline.config import executor_settings, score_buckets
from persona_pipeline.definitions import make_definitions
from persona_pipeline.defs.killed_runs import fail_killed_runs
from persona_pipeline.defs.persona_sets.jobs import BUILD_JOB, PERSONA_SET_ASSET_NAMES
from persona_pipeline.defs.persona_sets.partitions import partition_key, persona_set_partitions
from persona_pipeline.defs.scoring.jobs import SCORE_JOB, score_run_config
from persona_pipeline.defs.shared.orphans import PROCESS_TAG, process_identity
from persona_pipeline.defs.shared.progress import PROGRESS_LOGGER, progress_sink
from persona_pipeline.defs.shared.runs import PERSONA_SET_TAG, PIPELINE_TAG, UNFINISHED_RUN_STATUSES
from persona_pipeline.defs.sql_models.assets import OBSERVE_SOURCES_JOB, model_key
from persona_pipeline.defs.sql_models.jobs import SQL_MODELS_JOB
from persona_pipeline.defs.studies.explore import EXPLORE_JOB
from persona_pipeline.defs.studies.jobs import SNAPSHOT_JOB, STUDY_JOB
from persona_pipeline.errors import PersonaSetError
from persona_pipeline.persona_sets import lifecycle
from persona_pipeline.persona_sets.build import check_quarantine_limit
from persona_pipeline.runtime.instance import instance
from persona_pipeline.runtime.origin import LAUNCHED_BY_TAG, execute_as_launched, execute_distributed
from persona_pipeline.scoring import pipelines
from persona_pipeline.sql_models import discover, execution_order, require_cohort, stale_models
from persona_pipeline.warehouse import persona_sets as store
from persona_pipeline.warehouse.engine import get_engine

Say = Callable[[str], None]
# Dagster's documented run tags for a run over a range of partitions (what a single-run backfill carries)
RANGE_START_TAG, RANGE_END_TAG = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
RunResult = ExecuteInProcessResult | JobExecutionResult


@dataclass
class RunReport:
    """A finished run as the CLI reports it: its success, id, duration and, on failure, the error's text."""

    success: bool
    run_id: str
    seconds: float
    message: str
    user_error: bool = (
        False  # the run stopped on the data or the request (exit 2), not on the machine (exit 1)
    )


@contextlib.contextmanager
def sigterm_kept() -> Iterator[None]:
    """Dagster copies SIGINT's handler onto SIGTERM as a run in the main thread ends. A command started in the
    background of a script has SIGINT ignored, so after its first run it ignored `kill` (and handed that on to
    every process it started): SIGTERM gets back the handler it had."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.getsignal(signal.SIGTERM)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def run_job(
    job_name: str,
    say: Say,
    asset_selection: list[AssetKey] | None = None,
    partition_key: str | None = None,
    run_config: dict | None = None,
    tags: dict[str, str] | None = None,
) -> RunResult:
    """Execute a job of the Definitions as a run of the code location (runtime/origin.py), printing its
    steps' log lines compactly: in this process, or with PERSONA_EXECUTOR=celery, its steps on the workers
    (this process orchestrating, so the command still waits for the run and exits with its outcome).

    Runs that a killed command left "started" are settled first; this run is tagged with this process, with
    `tags` (the persona set's or pipeline's name) and as launched from the CLI.
    """
    config = {**(run_config or {}), "loggers": {PROGRESS_LOGGER: {}}}
    dagster = instance()
    fail_killed_runs(dagster, say)
    run_tags = {
        **(tags or {}),
        LAUNCHED_BY_TAG: "cli",
        PROCESS_TAG: process_identity(os.getpid()) or "",
    }
    with progress_sink(say), sigterm_kept():
        try:
            if executor_settings().distributed:
                return execute_distributed(
                    job_name, dagster, config, run_tags, asset_selection, partition_key
                )
            job = make_definitions().resolve_job_def(job_name)
            return execute_as_launched(job, dagster, config, run_tags, asset_selection, partition_key)
        except DagsterUnknownPartitionError as exc:  # deleted between our look and the run's start
            raise PersonaSetError(
                f"the partition {partition_key} went away as the {job_name} run started (its persona set was "
                "deleted meanwhile); nothing was run"
            ) from exc


def observe_sources(say: Say) -> RunReport:
    """Record each source table's change counter in Dagster (observe_sources): the UI then marks the models
    that read a changed table, and what they feed, stale."""
    start = time.perf_counter()
    return _report(run_job(OBSERVE_SOURCES_JOB, say), start)


def run_sql_models(say: Say, only: list[str] | None = None, changed_only: bool = False) -> tuple[bool, str]:
    """Rebuild SQL models (with `only`, those and what they need); returns success and the failure's text.

    With `changed_only`, models whose SQL and inputs are as they were at their last build are left as they
    are (a build or a scoring run then reads a cohort that is already current, without rebuilding it).
    """
    models = discover()
    order = execution_order(models, only)
    if changed_only:
        stale = stale_models(get_engine(), models, order)
        current = [n for n in order if n not in stale]
        if current:
            say(f"SQL models up to date (their SQL and sources unchanged since built): {', '.join(current)}")
        if not stale:
            return True, ""
        order = stale
    observe_sources(say)  # the models' materializations then record the source versions they read
    say(f"SQL models: {', '.join(order)}")
    result = run_job(SQL_MODELS_JOB, say, [model_key(models[n]) for n in order])
    if result.success:
        return True, ""
    message = failure_text(result)
    say(f"SQL models failed: {message}")
    return False, message


def _first_error(result: RunResult):  # noqa: ANN202 - Dagster's SerializableErrorInfo
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data and event.step_failure_data.error:
            error = event.step_failure_data.error
            while error.cause is not None and error.message.startswith("dagster."):
                error = error.cause
            return error
    return None


def failure_text(result: RunResult) -> str:
    """The first failed step's error as one line, without Dagster's wrapping."""
    error = _first_error(result)
    if error is None:
        return "see the run in the Dagster UI"
    return " ".join(re.sub(r"^[\w.]+(Error|Exception): ", "", error.message.strip()).split())


def user_error(result: RunResult) -> bool:
    """Whether the run stopped on one of our user errors (bad data, an impossible request)."""
    error = _first_error(result)
    return (
        error is not None
        and isinstance(getattr(errors, error.cls_name, None), type)
        and issubclass(getattr(errors, error.cls_name), errors.PersonaPipelineError)
    )


def build_persona_set(
    name: str,
    say: Say,
    max_quarantine_share: float | None = None,
    refresh_models: bool = True,
    study: bool = True,
) -> RunReport:
    """Materialize the whole chain for one persona set now, after rebuilding the SQL models its cohort needs;
    with `study`, its Analysis and report in the same run (a failure there leaves the set ready)."""
    engine = get_engine()
    record = store.get(engine, name)
    require_cohort(discover(), record.cohort)
    if max_quarantine_share is not None:
        check_quarantine_limit(max_quarantine_share)  # before anything changes: the set keeps its status
    start = time.perf_counter()
    if refresh_models:
        ok, failure = run_sql_models(say, [record.cohort], changed_only=True)
        if not ok:
            message = f"the cohort's SQL models failed: {failure}"
            lifecycle.mark_errored(engine, record.id, message)
            return RunReport(False, "", time.perf_counter() - start, message)
    key = partition_key(record.id)
    dagster = instance()
    fail_killed_runs(dagster, say)
    on_the_set = RunsFilter(statuses=UNFINISHED_RUN_STATUSES, tags={"dagster/partition": key})
    running = dagster.get_runs(on_the_set)
    if running:
        raise PersonaSetError(
            f"persona set {record.name!r} is being built or studied now (run {running[0].run_id}, "
            f"{running[0].job_name}); wait for it to finish, or terminate it in the Dagster UI, then build again"
        )
    dagster.add_dynamic_partitions(persona_set_partitions.name, [key])
    say(f"building persona set {record.name!r} (partition {key})")
    run_config = {}
    if max_quarantine_share is not None:
        run_config = {"ops": {"validated_traits": {"config": {"max_quarantine_share": max_quarantine_share}}}}
    chain = None if study else [AssetKey(a) for a in PERSONA_SET_ASSET_NAMES]
    result = run_job(BUILD_JOB, say, chain, key, run_config, {PERSONA_SET_TAG: record.name})
    seconds = time.perf_counter() - start
    others = [r for r in dagster.get_runs(on_the_set) if r.run_id != result.run_id]
    if not result.success and others:  # another build won the set: it settles the status, not this run
        return RunReport(False, result.run_id, seconds, failure_text(result))
    landed, message = lifecycle.settle_build_run(engine, record, failure_text(result))
    if landed:
        if not result.success:  # the personas are built; only the analysis or the report failed
            say(f"the analysis or report failed (the personas are built and ready): {failure_text(result)}")
        return RunReport(True, result.run_id, seconds, f"ready in {seconds:.1f}s")
    return RunReport(False, result.run_id, seconds, message, user_error(result))


def _report(result: RunResult, start: float) -> RunReport:
    seconds = time.perf_counter() - start
    return RunReport(
        result.success, result.run_id, seconds, "done" if result.success else failure_text(result)
    )


def refresh_study(name: str, say: Say, assets: list[str], window_days: int | None = None) -> RunReport:
    """Materialize some of a ready set's study assets (persona_analysis, persona_flow, persona_report) now."""
    record = store.get(get_engine(), name)
    key = partition_key(record.id)
    instance().add_dynamic_partitions(persona_set_partitions.name, [key])
    run_config = {}
    if window_days is not None:
        run_config = {"ops": {"persona_analysis": {"config": {"window_days": window_days}}}}
    start = time.perf_counter()
    selection = [AssetKey(a) for a in assets]
    result = run_job(STUDY_JOB, say, selection, key, run_config, {PERSONA_SET_TAG: record.name})
    return _report(result, start)


def take_snapshots(first: dt.date, last: dt.date, say: Say) -> tuple[bool, str]:
    """Snapshot every day from `first` to `last` in one run over that range of partitions, as a backfill
    launched from the UI runs (one run, not one per day); returns success and the failure's text."""
    if first == last:
        result = run_job(SNAPSHOT_JOB, say, partition_key=first.isoformat())
    else:
        tags = {
            RANGE_START_TAG: first.isoformat(),
            RANGE_END_TAG: last.isoformat(),
        }
        result = run_job(SNAPSHOT_JOB, say, tags=tags)
    return result.success, "" if result.success else failure_text(result)


def refresh_explore(say: Say) -> RunReport:
    """Materialize the Explore page now (the explore_refresh sensor does it when shown sets change)."""
    start = time.perf_counter()
    return _report(run_job(EXPLORE_JOB, say), start)


def run_pipeline(name: str, say: Say) -> RunReport:
    """Run a scoring pipeline now, through the same job the sensors launch (every bucket, in this process)."""
    start = time.perf_counter()
    ok, failure = run_sql_models(say, pipelines.get(get_engine(), name).population, changed_only=True)
    if not ok:
        return RunReport(
            False, "", time.perf_counter() - start, f"the population's SQL models failed: {failure}"
        )
    config = score_run_config(name, buckets=score_buckets(in_process=not executor_settings().distributed))
    return _report(run_job(SCORE_JOB, say, run_config=config, tags={PIPELINE_TAG: name}), start)
