"""Run Dagster jobs in process against the persistent instance, so CLI builds show up in `dagster dev`."""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dagster import AssetKey, DagsterInstance, DagsterRunStatus, RunsFilter

from persona_pipeline import lifecycle
from persona_pipeline.definitions import BUILD_JOB, SNAPSHOT_JOB, SQL_MODELS_JOB, STUDY_JOB
from persona_pipeline.defs.persona_assets import PERSONA_SET_ASSET_NAMES, persona_set_partitions
from persona_pipeline.settings import dagster_home, score_buckets
from persona_pipeline.sql_models import discover, execution_order, require_cohort, stale_models
from persona_pipeline.warehouse import persona_sets as store
from persona_pipeline.warehouse.engine import get_engine

DEFAULT_DAGSTER_YAML = """# Written by persona-pipeline for the embedded default: SQLite storage in this folder.
# For PostgreSQL storage, use deploy/dagster.yaml instead.
telemetry:
  enabled: false
"""

Say = Callable[[str], None]


def instance() -> DagsterInstance:
    """The Dagster instance at DAGSTER_HOME (default: the persona home's dagster folder), one per process."""
    home = dagster_home()
    os.environ["DAGSTER_HOME"] = str(home)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DEFAULT_DAGSTER_YAML, encoding="utf-8")
    return _instance_at(str(home))


@functools.lru_cache(maxsize=4)
def _instance_at(home: str) -> DagsterInstance:  # noqa: ARG001 - the cache key: one instance per home
    return DagsterInstance.get()


@dataclass
class BuildReport:
    success: bool
    run_id: str
    seconds: float
    message: str


# Runs executed in process carry the process that executes them: "host:pid:start", start being the process's
# start time in clock ticks since boot where /proc tells it, so that a pid reused later is not taken for it.
# The host includes the pid namespace: containers sharing a hostname (host networking) do not share pids.
PROCESS_TAG = "persona-pipeline/process"
_IN_PROCESS_UNFINISHED = [DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.STARTED]


def _process_identity(pid: int) -> str | None:
    """This host's process `pid` as PROCESS_TAG writes it, or None if no such process is running."""
    try:
        started = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except OSError:
        if Path("/proc/self/stat").exists():
            return None  # /proc works here and has no such process
        try:  # no /proc (macOS): a live pid is all that can be told
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        started = ""
    return f"{_this_host()}:{pid}:{started}"


def _this_host() -> str:
    try:
        return f"{socket.gethostname()}/{os.readlink('/proc/self/ns/pid')}"
    except OSError:
        return socket.gethostname()


def fail_orphaned_runs(dagster: DagsterInstance, say: Say | None = None) -> list[str]:
    """Mark failed the in-process runs whose process on this host is gone, and return their ids.

    A CLI run killed (or its machine restarted) never reports its end: it would stay "started" for good,
    and the deletion guard would refuse on its account. Runs from another host are left alone.
    """
    failed = []
    for run in dagster.get_runs(RunsFilter(statuses=_IN_PROCESS_UNFINISHED)):
        recorded = run.tags.get(PROCESS_TAG)
        if not recorded:
            continue
        host, pid, _ = recorded.rsplit(":", 2)
        if host != _this_host() or _process_identity(int(pid)) == recorded:
            continue
        if dagster.get_run_by_id(run.run_id).status not in _IN_PROCESS_UNFINISHED:
            continue  # it finished, or another reaper got there first, since the list was read
        message = (
            f"The process that executed this run (pid {pid} on {socket.gethostname()}) ended before the run "
            "did: it was killed or its machine restarted. Marked failed by persona-pipeline; run it again."
        )
        # the warehouse first: should it fail, the run stays unfinished and the next look tries again
        _settle_killed_build(dagster, run, message)
        _drop_killed_runs_shadows(run)
        dagster.report_run_failed(run, message)
        failed.append(run.run_id)
        if say:
            say(f"run {run.run_id} ({run.job_name}) was left unfinished by a killed process: marked failed")
    return failed


def _settle_killed_build(dagster: DagsterInstance, run, message: str) -> None:  # noqa: ANN001 - a DagsterRun
    """A killed build's set is settled unless another run is on it now (that run settles it)."""
    from persona_pipeline.deletion import UNFINISHED_RUN_STATUSES

    partition_key = run.tags.get("dagster/partition")
    if run.job_name != BUILD_JOB or not partition_key:
        return
    on_the_set = RunsFilter(statuses=UNFINISHED_RUN_STATUSES, tags={"dagster/partition": partition_key})
    if any(other.run_id != run.run_id for other in dagster.get_runs(on_the_set)):
        return  # another run is on the set now and will settle its status
    lifecycle.build_killed(get_engine(), partition_key, message)


def _drop_killed_runs_shadows(run) -> None:  # noqa: ANN001 - a DagsterRun
    from persona_pipeline import pipelines
    from persona_pipeline.defs.pipeline_defs import SCORE_JOB, pipeline_of

    name = pipeline_of(run.run_config)
    if run.job_name == SCORE_JOB and name:
        pipelines.abandon_run(get_engine(), name, pipelines.run_token(run.run_id))


def _run(job_name: str, say: Say, asset_selection: list[AssetKey] | None = None, **kwargs):  # noqa: ANN003, ANN202
    """Execute a job of the Definitions in this process, printing its steps' log lines compactly."""
    from persona_pipeline.definitions import make_definitions
    from persona_pipeline.defs.progress import PROGRESS_LOGGER, progress_sink

    run_config = {**kwargs.pop("run_config", {}), "loggers": {PROGRESS_LOGGER: {}}}
    dagster = instance()
    fail_orphaned_runs(dagster, say)
    with progress_sink(say):
        return (
            make_definitions()
            .resolve_job_def(job_name)
            .execute_in_process(
                run_config=run_config,
                instance=dagster,
                asset_selection=asset_selection,
                raise_on_error=False,
                tags={PROCESS_TAG: _process_identity(os.getpid()) or ""},
                **kwargs,
            )
        )


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
    say(f"SQL models: {', '.join(order)}")
    from persona_pipeline.defs.sql_assets import model_key

    result = _run(SQL_MODELS_JOB, say, [model_key(models[n]) for n in order])
    if result.success:
        return True, ""
    message = _failure_text(result)
    say(f"SQL models failed: {message}")
    return False, message


def _failure_text(result) -> str:  # noqa: ANN001 - Dagster's ExecuteInProcessResult
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data and event.step_failure_data.error:
            error = event.step_failure_data.error
            while error.cause is not None and error.message.startswith("dagster."):
                error = error.cause
            return re.sub(r"^[\w.]+(Error|Exception): ", "", error.message.strip())
    return "see the run in the Dagster UI"


def build_persona_set(
    name: str,
    say: Say,
    max_quarantine_share: float | None = None,
    refresh_models: bool = True,
    study: bool = True,
) -> BuildReport:
    """Materialize the whole chain for one persona set now, after rebuilding the SQL models its cohort needs;
    with `study`, its Analysis and report in the same run (a failure there leaves the set ready)."""
    engine = get_engine()
    record = store.get(engine, name)
    require_cohort(discover(), record.cohort)
    start = time.perf_counter()
    if refresh_models:
        ok, failure = run_sql_models(say, [record.cohort], changed_only=True)
        if not ok:
            message = f"the cohort's SQL models failed: {failure}"
            store.set_status(engine, record.id, "errored", message)
            return BuildReport(False, "", time.perf_counter() - start, message)
    dagster = instance()
    dagster.add_dynamic_partitions(persona_set_partitions.name, [record.partition_key])
    say(f"building persona set {record.name!r} (partition {record.partition_key})")
    run_config = {}
    if max_quarantine_share is not None:
        run_config = {"ops": {"validated_traits": {"config": {"max_quarantine_share": max_quarantine_share}}}}
    chain = None if study else [AssetKey(a) for a in PERSONA_SET_ASSET_NAMES]
    result = _run(BUILD_JOB, say, chain, partition_key=record.partition_key, run_config=run_config)
    seconds = time.perf_counter() - start
    refreshed = store.get_by_id(engine, record.id)
    if refreshed.status == "ready" and refreshed.current_build != record.current_build:  # a new build landed
        if not result.success:  # the personas are built; only the analysis or the report failed
            say(f"the analysis or report failed (the personas are built and ready): {_failure_text(result)}")
        return BuildReport(True, result.run_id, seconds, f"ready in {seconds:.1f}s")
    message = refreshed.error or _failure_text(result)
    if refreshed.status != "errored":
        store.set_status(engine, record.id, "errored", message)
    return BuildReport(False, result.run_id, seconds, message)


def refresh_study(name: str, say: Say, assets: list[str], window_days: int | None = None) -> BuildReport:
    """Materialize some of a ready set's study assets (persona_analysis, persona_flow, persona_report) now."""
    engine = get_engine()
    record = store.get(engine, name)
    instance().add_dynamic_partitions(persona_set_partitions.name, [record.partition_key])
    run_config = {}
    if window_days is not None:
        run_config = {"ops": {"persona_analysis": {"config": {"window_days": window_days}}}}
    start = time.perf_counter()
    result = _run(
        STUDY_JOB,
        say,
        [AssetKey(a) for a in assets],
        partition_key=record.partition_key,
        run_config=run_config,
    )
    return _report(result, start)


def _report(result, start: float) -> BuildReport:  # noqa: ANN001 - Dagster's ExecuteInProcessResult
    """A finished run as the CLI reports it: its success, id, duration and, on failure, the error's text."""
    seconds = time.perf_counter() - start
    return BuildReport(
        result.success, result.run_id, seconds, "done" if result.success else _failure_text(result)
    )


def take_snapshots(days: list[dt.date], say: Say) -> list[tuple[dt.date, bool, str]]:
    """Run the daily snapshot job for each day, oldest first; each day is its own run (a partition)."""
    outcomes = []
    for day in sorted(days):
        result = _run(SNAPSHOT_JOB, say, partition_key=day.isoformat())
        outcomes.append((day, result.success, "" if result.success else _failure_text(result)))
        if not result.success:
            break
    return outcomes


def refresh_explore(say: Say) -> BuildReport:
    """Materialize the Explore page now (the explore_refresh sensor does it when shown sets change)."""
    from persona_pipeline.defs.explore_assets import EXPLORE_JOB

    start = time.perf_counter()
    return _report(_run(EXPLORE_JOB, say), start)


def run_pipeline(name: str, say: Say) -> BuildReport:
    """Run a scoring pipeline now, through the same job the sensors launch (every bucket, in this process)."""
    from persona_pipeline import pipelines
    from persona_pipeline.defs.pipeline_defs import SCORE_JOB, score_run_config

    start = time.perf_counter()
    ok, failure = run_sql_models(say, pipelines.get(get_engine(), name).population, changed_only=True)
    if not ok:
        return BuildReport(
            False, "", time.perf_counter() - start, f"the population's SQL models failed: {failure}"
        )
    config = score_run_config(name, buckets=score_buckets(in_process=True))
    return _report(_run(SCORE_JOB, say, run_config=config), start)
