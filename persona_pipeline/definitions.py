"""The one Definitions object, merged from each domain's wiring (defs/<domain>/); workspace.yaml loads it."""

from __future__ import annotations

from dagster import Definitions, colored_console_logger

from persona_pipeline.defs.killed_runs import fail_killed_runs
from persona_pipeline.defs.persona_sets.assets import persona_set_assets
from persona_pipeline.defs.persona_sets.jobs import build_persona_set_job
from persona_pipeline.defs.persona_sets.sensors import (
    persona_set_built,
    persona_set_failed,
    queued_persona_sets_sensor,
)
from persona_pipeline.defs.scoring.jobs import score_pipeline_job
from persona_pipeline.defs.scoring.sensors import changed_contacts, fresh_payloads, scheduled_pipelines
from persona_pipeline.defs.shared.automation import persona_automation
from persona_pipeline.defs.shared.conventions import with_conventions
from persona_pipeline.defs.shared.executor import step_executor
from persona_pipeline.defs.shared.io import BuildsIOManager
from persona_pipeline.defs.shared.progress import PROGRESS_LOGGER, progress_logger
from persona_pipeline.defs.shared.resources import WarehouseResource
from persona_pipeline.defs.sql_models.assets import (
    SOURCE_ASSETS,
    cohort_keys,
    observe_sources_job,
    sql_model_assets,
)
from persona_pipeline.defs.sql_models.jobs import sql_models_job
from persona_pipeline.defs.studies.assets import study_assets
from persona_pipeline.defs.studies.explore import (
    explore_job,
    explore_refresh,
    persona_explore,
    persona_sets_overview,
)
from persona_pipeline.defs.studies.jobs import snapshot_jobs, study_persona_set_job
from persona_pipeline.defs.studies.partitions import daily_partitions


def make_definitions() -> Definitions:
    """Built from the SQL models folder as it is now (PERSONA_SQL_DIR), so new cohorts appear on reload."""
    cohorts = cohort_keys()
    days = daily_partitions()
    snapshot_memberships_job, daily_snapshot_schedule = snapshot_jobs(days)
    return Definitions(
        assets=[
            *with_conventions(SOURCE_ASSETS, "sources"),
            *with_conventions(sql_model_assets(), "sql_models"),
            *with_conventions(persona_set_assets(cohorts), "persona_sets"),
            *with_conventions(
                [*study_assets(cohorts, days), persona_explore, persona_sets_overview], "studies"
            ),
        ],
        jobs=[
            observe_sources_job,
            sql_models_job,
            build_persona_set_job,
            study_persona_set_job,
            snapshot_memberships_job,
            score_pipeline_job,
            explore_job,
        ],
        schedules=[daily_snapshot_schedule],
        sensors=[
            queued_persona_sets_sensor(fail_killed_runs),
            persona_set_built,
            persona_set_failed,
            scheduled_pipelines,
            changed_contacts,
            fresh_payloads,
            explore_refresh,
            persona_automation,
        ],
        loggers={"console": colored_console_logger, PROGRESS_LOGGER: progress_logger},
        executor=step_executor(),
        resources={
            "warehouse": WarehouseResource(),
            "io_manager": BuildsIOManager(),
        },
    )


defs = make_definitions()
