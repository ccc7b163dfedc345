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
from persona_pipeline.defs.shared.executor import step_executor
from persona_pipeline.defs.shared.io import BuildsIOManager
from persona_pipeline.defs.shared.progress import PROGRESS_LOGGER, progress_logger
from persona_pipeline.defs.shared.resources import WarehouseResource
from persona_pipeline.defs.sql_models.assets import SOURCE_SPECS, cohort_keys, sql_model_assets
from persona_pipeline.defs.sql_models.jobs import sql_models_job
from persona_pipeline.defs.studies.assets import STUDY_ASSETS
from persona_pipeline.defs.studies.explore import explore_job, explore_refresh, persona_explore
from persona_pipeline.defs.studies.jobs import (
    daily_snapshot_schedule,
    snapshot_memberships_job,
    study_persona_set_job,
)


def make_definitions() -> Definitions:
    """Built from the SQL models folder as it is now (PERSONA_SQL_DIR), so new cohorts appear on reload."""
    return Definitions(
        assets=[
            *SOURCE_SPECS,
            *sql_model_assets(),
            *persona_set_assets(cohort_keys()),
            *STUDY_ASSETS,
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
            queued_persona_sets_sensor(fail_killed_runs),
            persona_set_built,
            persona_set_failed,
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
