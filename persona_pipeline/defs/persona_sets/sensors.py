"""Sensors: queued persona sets are built without anyone pressing a button; finished builds notify."""

from collections.abc import Callable

from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunRequest,
    RunsFilter,
    RunStatusSensorContext,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    run_failure_sensor,
    run_status_sensor,
    sensor,
)

from persona_pipeline import notify
from persona_pipeline.config import sensor_interval
from persona_pipeline.defs.persona_sets.jobs import build_persona_set_job
from persona_pipeline.defs.persona_sets.partitions import (
    partition_key,
    persona_set_id,
    persona_set_partitions,
)
from persona_pipeline.defs.shared.resources import WarehouseResource
from persona_pipeline.defs.shared.runs import PERSONA_SET_TAG, UNFINISHED_RUN_STATUSES
from persona_pipeline.persona_sets import lifecycle
from persona_pipeline.studies.report import default_report_path
from persona_pipeline.warehouse import persona_sets as store


def queued_persona_sets_sensor(fail_killed_runs: Callable[[DagsterInstance], list[str]]) -> SensorDefinition:
    """The sensor, given how to settle runs of killed CLI processes (defs/killed_runs.py, which sits above
    every domain's wiring, this one included)."""

    @sensor(
        name="queued_persona_sets",
        job=build_persona_set_job,
        minimum_interval_seconds=sensor_interval(30),
        default_status=DefaultSensorStatus.RUNNING,
        description="Adds the partition of each queued persona set and launches its build (one run per queueing).",
    )
    def queued_persona_sets(context: SensorEvaluationContext, warehouse: WarehouseResource) -> SensorResult:
        orphaned = fail_killed_runs(context.instance)
        if orphaned:
            context.log.warning(
                f"marked failed {len(orphaned)} run(s) whose `persona-pipeline` process on this host was "
                f"killed before they finished: {', '.join(orphaned)}"
            )
        return _launch_queued(context, warehouse)

    return queued_persona_sets


def _launch_queued(context: SensorEvaluationContext, warehouse: WarehouseResource) -> SensorResult:
    engine = warehouse.engine()
    existing = set(context.instance.get_dynamic_partitions(persona_set_partitions.name))
    lacking = [r for r in store.list_all(engine) if partition_key(r.id) not in existing]
    restored = [repr(r.name) for r in lacking if r.current_build is not None]
    if restored:
        context.log.warning(
            f"partition(s) of {', '.join(restored)} were deleted outside the lineage guard; restored them "
            "(their data is still there). Delete persona sets with `persona-pipeline persona-set delete`."
        )
    new = sorted(partition_key(r.id) for r in lacking)
    adding = [persona_set_partitions.build_add_request(new)] if new else []
    # one run per queueing: the same queued state always gives the same key, so a second tick launches nothing
    requests = [
        RunRequest(
            run_key=f"{partition_key(r.id)}@{r.updated_at:%Y%m%dT%H%M%S}",
            partition_key=partition_key(r.id),
            tags={PERSONA_SET_TAG: r.name},
        )
        for r in lifecycle.queued_sets(engine)
    ]
    if not requests:
        return SensorResult(skip_reason="no queued persona set", dynamic_partitions_requests=adding)
    return SensorResult(run_requests=requests, dynamic_partitions_requests=adding)


def _set_of(context: RunStatusSensorContext) -> int | None:
    key = context.dagster_run.tags.get("dagster/partition")
    return persona_set_id(key) if key else None


@run_status_sensor(
    name="persona_set_built",
    run_status=DagsterRunStatus.SUCCESS,
    monitored_jobs=[build_persona_set_job],
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=sensor_interval(30),
    description="Marks the persona set ready and sends the notification.",
)
def persona_set_built(context: RunStatusSensorContext, warehouse: WarehouseResource) -> None:
    set_id = _set_of(context)
    if set_id is not None:
        engine = warehouse.engine()
        report = default_report_path(store.get_by_id(engine, set_id))
        subject, body = lifecycle.build_finished(engine, set_id, True, None, report=report)
        context.log.info(f"{subject} -> {notify.send(subject, body)}")


@run_failure_sensor(
    name="persona_set_failed",
    monitored_jobs=[build_persona_set_job],
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=sensor_interval(30),
    description="Marks the persona set errored with the error's text and sends the notification.",
)
def persona_set_failed(context: RunFailureSensorContext, warehouse: WarehouseResource) -> None:
    set_id = _set_of(context)
    key = context.dagster_run.tags.get("dagster/partition")
    running = RunsFilter(statuses=UNFINISHED_RUN_STATUSES, tags={"dagster/partition": key}) if key else None
    if running and context.instance.get_runs(running, limit=1):
        context.log.info(f"another run is building {key} now: it settles the set and notifies")
        return
    if set_id is not None:
        error = context.failure_event.message if context.failure_event else None
        materialized = context.instance.all_logs(
            context.dagster_run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION
        )
        built = any(e.dagster_event.asset_key == AssetKey("persona_memberships") for e in materialized)
        subject, body = lifecycle.build_finished(warehouse.engine(), set_id, False, error, built)
        context.log.info(f"{subject} -> {notify.send(subject, body)}")
