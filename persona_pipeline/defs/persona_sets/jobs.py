"""The build job: one persona set (a partition) from its cohort to its report."""

from dagster import AssetSelection, define_asset_job

from persona_pipeline.defs.persona_sets.partitions import persona_set_partitions

BUILD_JOB = "build_persona_set"
PERSONA_SET_ASSET_NAMES = [
    "cohort_traits",
    "validated_traits",
    "persona_model",
    "personas",
    "persona_memberships",
]
STUDY_AFTER_BUILD = ["persona_analysis", "persona_report"]

build_persona_set_job = define_asset_job(
    BUILD_JOB,
    selection=AssetSelection.assets(*PERSONA_SET_ASSET_NAMES, *STUDY_AFTER_BUILD),
    partitions_def=persona_set_partitions,
    description="Build one persona set (a partition): extract, validate, fit, describe, assign, analyse, report.",
)
