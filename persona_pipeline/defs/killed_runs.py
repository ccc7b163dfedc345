"""Runs a killed CLI process left "started", settled in every domain: the set errored, the shadows dropped.

The queued_persona_sets sensor (so the daemon heals the UI by itself) and every CLI command that runs a job
or deletes something call `fail_killed_runs`.
"""

from __future__ import annotations

from collections.abc import Callable

from dagster import DagsterInstance, DagsterRun, RunsFilter

from persona_pipeline.defs.persona_sets.jobs import BUILD_JOB
from persona_pipeline.defs.persona_sets.partitions import partition_key, persona_set_id
from persona_pipeline.defs.scoring.jobs import SCORE_JOB, pipeline_of
from persona_pipeline.defs.shared.orphans import fail_orphaned_runs
from persona_pipeline.defs.shared.resources import WarehouseResource
from persona_pipeline.defs.shared.runs import UNFINISHED_RUN_STATUSES
from persona_pipeline.persona_sets import lifecycle
from persona_pipeline.scoring import runs


def settle_killed_build(dagster: DagsterInstance, run: DagsterRun, message: str) -> None:
    """A killed build's set is settled unless another run is on it now (that run settles it)."""
    partition = run.tags.get("dagster/partition")
    if run.job_name != BUILD_JOB or not partition:
        return
    on_the_set = RunsFilter(statuses=UNFINISHED_RUN_STATUSES, tags={"dagster/partition": partition})
    if any(other.run_id != run.run_id for other in dagster.get_runs(on_the_set)):
        return  # another run is on the set now and will settle its status
    lifecycle.build_killed(WarehouseResource().engine(), persona_set_id(partition), message)


def drop_killed_runs_shadows(_dagster: DagsterInstance, run: DagsterRun, _message: str) -> None:
    """A killed full scoring run's shadow tables go now rather than an hour later."""
    name = pipeline_of(run.run_config)
    if run.job_name == SCORE_JOB and name:
        runs.abandon_run(WarehouseResource().engine(), name, runs.run_token(run.run_id))


def settle_abandoned_builds(dagster: DagsterInstance, say: Callable[[str], None] | None = None) -> list[str]:
    """Sets left "building" with no unfinished run on them become errored; returns their names.

    A build run that failed while it could not write the set's status (the warehouse restarting or its disk
    full during the memberships write) is recorded failed by Dagster, but its set would stay "building".
    """
    engine = WarehouseResource().engine()
    settled = []
    for record in lifecycle.building_sets(engine):
        key = partition_key(record.id)
        running = RunsFilter(statuses=UNFINISHED_RUN_STATUSES, tags={"dagster/partition": key})
        if dagster.get_runs(running, limit=1):
            continue
        lifecycle.build_abandoned(engine, record.id)
        settled.append(record.name)
        if say:
            say(f"persona set {record.name!r} was left building by a run that ended: marked errored")
    return settled


def fail_killed_runs(dagster: DagsterInstance, say: Callable[[str], None] | None = None) -> list[str]:
    """Mark failed the runs of killed CLI processes on this host, settling each domain first; their ids.

    Then no set stays "building" without a run on it (settle_abandoned_builds).
    """
    failed = fail_orphaned_runs(dagster, [settle_killed_build, drop_killed_runs_shadows], say)
    settle_abandoned_builds(dagster, say)
    return failed
