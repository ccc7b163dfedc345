"""The study jobs: refresh a set's Analysis, Flow and report; take the daily membership snapshot."""

from typing import Any

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    PartitionsDefinition,
    ScheduleDefinition,
    build_schedule_from_partitioned_job,
    define_asset_job,
)

from persona_pipeline.defs.persona_sets.partitions import persona_set_partitions

STUDY_JOB = "study_persona_set"
SNAPSHOT_JOB = "snapshot_memberships"

study_persona_set_job = define_asset_job(
    STUDY_JOB,
    selection=AssetSelection.assets("persona_analysis", "persona_flow", "persona_report"),
    partitions_def=persona_set_partitions,
    description="Refresh a built persona set's Analysis, Flow and report without rebuilding its personas.",
)


def snapshot_jobs(days: PartitionsDefinition) -> tuple[Any, ScheduleDefinition]:  # Any: define_asset_job's
    """The snapshot job over the daily partitions, and its schedule: late in the day, so the day's changes are
    in (today's partition); running by default, as the README says."""
    job = define_asset_job(
        SNAPSHOT_JOB,
        selection=AssetSelection.assets("membership_snapshot"),
        partitions_def=days,
        description="Take one day's membership snapshot of every ready persona set (a backfill: a range of days).",
    )
    schedule = build_schedule_from_partitioned_job(
        job, hour_of_day=23, minute_of_hour=30, default_status=DefaultScheduleStatus.RUNNING
    )
    return job, schedule
