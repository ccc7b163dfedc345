"""The study jobs: refresh a set's Analysis, Flow and report; take the daily membership snapshot."""

from dagster import AssetSelection, build_schedule_from_partitioned_job, define_asset_job

from persona_pipeline.defs.persona_sets.partitions import persona_set_partitions
from persona_pipeline.defs.studies.partitions import daily_partitions

STUDY_JOB = "study_persona_set"
SNAPSHOT_JOB = "snapshot_memberships"

study_persona_set_job = define_asset_job(
    STUDY_JOB,
    selection=AssetSelection.assets("persona_analysis", "persona_flow", "persona_report"),
    partitions_def=persona_set_partitions,
    description="Refresh a built persona set's Analysis, Flow and report without rebuilding its personas.",
)
snapshot_memberships_job = define_asset_job(
    SNAPSHOT_JOB,
    selection=AssetSelection.assets("membership_snapshot"),
    partitions_def=daily_partitions,
    description="Take one day's membership snapshot of every ready persona set (backfill over the history).",
)
# Late in the day, so the day's changes are in: today's partition.
daily_snapshot_schedule = build_schedule_from_partitioned_job(
    snapshot_memberships_job, hour_of_day=23, minute_of_hour=30
)
