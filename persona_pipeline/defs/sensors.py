"""Sensors: queued persona sets are built without anyone pressing a button; finished builds notify."""

from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunRequest,
    RunStatusSensorContext,
    SensorEvaluationContext,
    SensorResult,
    run_failure_sensor,
    run_status_sensor,
    sensor,
)

from persona_pipeline import lifecycle, notify
from persona_pipeline.defs.persona_assets import persona_set_partitions
from persona_pipeline.defs.resources import WarehouseResource
from persona_pipeline.settings import sensor_interval


def queued_persona_sets_sensor(job):  # noqa: ANN001, ANN201 - the build job, defined with the Definitions
    @sensor(
        name="queued_persona_sets",
        job=job,
        minimum_interval_seconds=sensor_interval(30),
        default_status=DefaultSensorStatus.RUNNING,
        description="Adds the partition of each queued persona set and launches its build (one run per queueing).",
    )
    def _sensor(context: SensorEvaluationContext, warehouse: WarehouseResource) -> SensorResult:
        from persona_pipeline.runner import fail_orphaned_runs  # runner imports the Definitions

        orphaned = fail_orphaned_runs(context.instance)
        if orphaned:
            context.log.warning(
                f"marked failed {len(orphaned)} run(s) whose `persona-pipeline` process on this host was "
                f"killed before they finished: {', '.join(orphaned)}"
            )
        engine = warehouse.engine()
        existing = set(context.instance.get_dynamic_partitions(persona_set_partitions.name))
        missing, restored = lifecycle.missing_partitions(engine, existing)
        if restored:
            context.log.warning(
                f"partition(s) of {', '.join(restored)} were deleted outside the lineage guard; restored them "
                "(their data is still there). Delete persona sets with `persona-pipeline persona-set delete`."
            )
        requests = lifecycle.queued_builds(engine)
        new = sorted(set(missing) | ({r.partition_key for r in requests} - existing))
        if not requests:
            return SensorResult(
                skip_reason="no queued persona set",
                dynamic_partitions_requests=[persona_set_partitions.build_add_request(new)] if new else [],
            )
        return SensorResult(
            run_requests=[RunRequest(run_key=r.run_key, partition_key=r.partition_key) for r in requests],
            dynamic_partitions_requests=[persona_set_partitions.build_add_request(new)] if new else [],
        )

    return _sensor


def _partition(context: RunStatusSensorContext) -> str | None:
    return context.dagster_run.tags.get("dagster/partition")


def build_outcome_sensors(job):  # noqa: ANN001, ANN201
    @run_status_sensor(
        name="persona_set_built",
        run_status=DagsterRunStatus.SUCCESS,
        monitored_jobs=[job],
        default_status=DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=sensor_interval(30),
        description="Marks the persona set ready and sends the notification.",
    )
    def built(context: RunStatusSensorContext, warehouse: WarehouseResource) -> None:
        key = _partition(context)
        if key:
            subject, body = lifecycle.build_finished(warehouse.engine(), key, True, None)
            context.log.info(f"{subject} -> {notify.send(subject, body)}")

    @run_failure_sensor(
        name="persona_set_failed",
        monitored_jobs=[job],
        default_status=DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=sensor_interval(30),
        description="Marks the persona set errored with the error's text and sends the notification.",
    )
    def failed(context: RunFailureSensorContext, warehouse: WarehouseResource) -> None:
        key = _partition(context)
        if key:
            error = context.failure_event.message if context.failure_event else None
            materialized = context.instance.all_logs(
                context.dagster_run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION
            )
            built = any(e.dagster_event.asset_key == AssetKey("persona_memberships") for e in materialized)
            subject, body = lifecycle.build_finished(warehouse.engine(), key, False, error, built)
            context.log.info(f"{subject} -> {notify.send(subject, body)}")

    return [built, failed]
