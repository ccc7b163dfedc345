"""The one Definitions object: SQL models, the persona set chain and its studies, jobs, schedule, resources."""

from __future__ import annotations

from dagster import AssetSelection, Definitions, build_schedule_from_partitioned_job, define_asset_job
from dagster._loggers import colored_console_logger

from persona_pipeline.defs.executor import step_executor
from persona_pipeline.defs.explore_assets import explore_job, explore_refresh, persona_explore
from persona_pipeline.defs.io import BuildsIOManager
from persona_pipeline.defs.persona_assets import (
    PERSONA_SET_ASSET_NAMES,
    persona_set_assets,
    persona_set_partitions,
)
from persona_pipeline.defs.pipeline_defs import (
    changed_contacts,
    fresh_payloads,
    scheduled_pipelines,
    score_pipeline_job,
)
from persona_pipeline.defs.progress import PROGRESS_LOGGER, progress_logger
from persona_pipeline.defs.resources import WarehouseResource
from persona_pipeline.defs.sensors import build_outcome_sensors, queued_persona_sets_sensor
from persona_pipeline.defs.sql_assets import SOURCE_SPECS, cohort_keys, sql_model_assets
from persona_pipeline.defs.study_assets import STUDY_ASSETS, daily_partitions, membership_snapshot

SQL_MODELS_JOB = "sql_models"
BUILD_JOB = "build_persona_set"
STUDY_JOB = "study_persona_set"
SNAPSHOT_JOB = "snapshot_memberships"

sql_models_job = define_asset_job(
    SQL_MODELS_JOB,
    selection=AssetSelection.groups("staging", "cohorts", "models"),
    description="Rebuild every SQL model in dependency order.",
)
build_persona_set_job = define_asset_job(
    BUILD_JOB,
    selection=AssetSelection.assets(*PERSONA_SET_ASSET_NAMES, "persona_analysis", "persona_report"),
    partitions_def=persona_set_partitions,
    description="Build one persona set (a partition): extract, validate, fit, describe, assign, analyse, report.",
)
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


def make_definitions() -> Definitions:
    """Built from the SQL models folder as it is now (PERSONA_SQL_DIR), so new cohorts appear on reload."""
    return Definitions(
        assets=[
            *SOURCE_SPECS,
            *sql_model_assets(),
            *persona_set_assets(cohort_keys()),
            *STUDY_ASSETS,
            membership_snapshot,
            persona_explore,
        ],
        jobs=[
            sql_models_job,
            build_persona_set_job,
            study_persona_set_job,
            snapshot_memberships_job,
            score_pipeline_job,
            explore_job,
        ],
        schedules=[daily_snapshot_schedule],
        sensors=[
            queued_persona_sets_sensor(build_persona_set_job),
            *build_outcome_sensors(build_persona_set_job),
            scheduled_pipelines,
            changed_contacts,
            fresh_payloads,
            explore_refresh,
        ],
        loggers={"console": colored_console_logger, PROGRESS_LOGGER: progress_logger},
        executor=step_executor(),
        resources={
            "warehouse": WarehouseResource(),
            "io_manager": BuildsIOManager(),
        },
    )


defs = make_definitions()
