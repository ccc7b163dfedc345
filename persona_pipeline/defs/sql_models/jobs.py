"""The job that rebuilds SQL models (every one, or a selection with what they need)."""

from dagster import AssetSelection, define_asset_job

SQL_MODELS_JOB = "sql_models"
sql_models_job = define_asset_job(
    SQL_MODELS_JOB,
    selection=AssetSelection.groups("staging", "cohorts", "models"),
    description="Rebuild every SQL model in dependency order.",
)
