"""Explore and the persona sets overview in Dagster: the pages people open, refreshed when what they show changes."""

import json

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetSelection,
    DefaultSensorStatus,
    MaterializeResult,
    MetadataValue,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    asset,
    define_asset_job,
    sensor,
)

from persona_pipeline.config import sensor_interval
from persona_pipeline.defs.shared.metadata import markdown_table
from persona_pipeline.defs.shared.resources import WarehouseResource
from persona_pipeline.studies import explore, overview

EXPLORE_JOB = "explore_persona_sets"


@asset(
    group_name="explore",
    kinds={"html"},
    deps=["personas", "persona_memberships"],  # every set's partitions: the page shows them all
    description="The persona sets shown in Explore side by side: sizes, top traits, geography (HTML page).",
)
def persona_explore(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    path, table = explore.write_explore(warehouse.engine())
    context.log.info(f"Explore page for {table['persona_set'].nunique()} persona set(s): {path}")
    shown = pd.DataFrame(
        {
            "persona set": table["persona_set"],
            "persona": table["persona"],
            "population": table["population"].map("{:,}".format),
            "share": table["share"].map("{:.1%}".format),
            "top traits": table["top_traits"].map("; ".join),
        }
    )
    return MaterializeResult(
        metadata={
            "path": MetadataValue.path(str(path)),
            "persona_sets": int(table["persona_set"].nunique()),
            "dagster/row_count": len(table),
            "side_by_side": markdown_table(shown),
        }
    )


@asset(
    group_name="explore",
    kinds={"html"},
    deps=["personas", "persona_report"],  # every set's partitions
    description="Every persona set with its status, cohort, personas, Explore flag, last build and report.",
)
def persona_sets_overview(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    path, rows = overview.write_overview(warehouse.engine())
    context.log.info(f"overview of {len(rows)} persona set(s): {path}")
    return MaterializeResult(
        metadata={
            "persona sets": MetadataValue.md(overview.markdown(rows)),
            "page": MetadataValue.path(str(path)),
            "dagster/row_count": len(rows),
        }
    )


explore_job = define_asset_job(
    EXPLORE_JOB,
    selection=AssetSelection.assets(persona_explore, persona_sets_overview),
    description="Refresh the Explore page and the persona sets overview.",
)


@sensor(
    name="explore_refresh",
    job=explore_job,
    minimum_interval_seconds=sensor_interval(30),
    default_status=DefaultSensorStatus.RUNNING,
    description="Refreshes Explore and the overview when a set is built, errored, renamed, shown, "
    "hidden or deleted (one run per change).",
)
def explore_refresh(context: SensorEvaluationContext, warehouse: WarehouseResource) -> SensorResult:
    engine = warehouse.engine()
    fingerprint = explore.explore_fingerprint(engine) + overview.overview_fingerprint(engine)
    seen = json.loads(context.cursor) if context.cursor else {"changes": 0, "fingerprint": None}
    if fingerprint == seen["fingerprint"]:
        return SensorResult(skip_reason="Explore is up to date")
    # counted, so going back to an earlier state (hide, then show again) is a new run, not a used run key
    changes = seen["changes"] + 1
    return SensorResult(
        run_requests=[RunRequest(run_key=f"explore-{changes}@{fingerprint}")],
        cursor=json.dumps({"changes": changes, "fingerprint": fingerprint}),
    )
