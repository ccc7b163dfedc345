"""The one Definitions object: SQL models, the persona set chain, jobs, the warehouse and the IO manager."""

from __future__ import annotations

from dagster import AssetSelection, Definitions, define_asset_job
from dagster._loggers import colored_console_logger

from persona_pipeline.defs.io import BuildsIOManager
from persona_pipeline.defs.persona_assets import (
    PERSONA_SET_ASSET_NAMES,
    persona_set_assets,
    persona_set_partitions,
)
from persona_pipeline.defs.progress import PROGRESS_LOGGER, progress_logger
from persona_pipeline.defs.resources import WarehouseResource
from persona_pipeline.defs.sql_assets import SOURCE_SPECS, cohort_keys, sql_model_assets

SQL_MODELS_JOB = "sql_models"
BUILD_JOB = "build_persona_set"

sql_models_job = define_asset_job(
    SQL_MODELS_JOB,
    selection=AssetSelection.groups("staging", "cohorts", "models"),
    description="Rebuild every SQL model in dependency order.",
)
build_persona_set_job = define_asset_job(
    BUILD_JOB,
    selection=AssetSelection.assets(*PERSONA_SET_ASSET_NAMES),
    partitions_def=persona_set_partitions,
    description="Build one persona set (a partition): extract, validate, fit, describe, assign.",
)


def make_definitions() -> Definitions:
    """Built from the SQL models folder as it is now (PERSONA_SQL_DIR), so new cohorts appear on reload."""
    return Definitions(
        assets=[*SOURCE_SPECS, *sql_model_assets(), *persona_set_assets(cohort_keys())],
        jobs=[sql_models_job, build_persona_set_job],
        loggers={"console": colored_console_logger, PROGRESS_LOGGER: progress_logger},
        resources={
            "warehouse": WarehouseResource(),
            "io_manager": BuildsIOManager(),
        },
    )


defs = make_definitions()
