"""Studying persona sets in Dagster: Analysis and report per set, daily membership snapshots, Flow per set."""

import datetime as dt

import pandas as pd
from dagster import (
    AllPartitionMapping,
    AssetDep,
    AssetExecutionContext,
    AutomationCondition,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
)

from persona_pipeline.config import currency
from persona_pipeline.core.domain import DEFAULT_WINDOW_DAYS, PersonaSet, names_by_id
from persona_pipeline.core.flow import transition_matrix
from persona_pipeline.core.render.markdown import interpretations_markdown
from persona_pipeline.defs.persona_sets.assets import GROUP
from persona_pipeline.defs.persona_sets.partitions import persona_set_id, persona_set_partitions
from persona_pipeline.defs.shared.metadata import markdown_table
from persona_pipeline.defs.shared.resources import WarehouseResource
from persona_pipeline.defs.studies.partitions import daily_partitions
from persona_pipeline.studies import analysis, flow, report
from persona_pipeline.warehouse import persona_sets as store


def _record(warehouse: WarehouseResource, partition: str) -> PersonaSet:
    return store.get_by_id(warehouse.engine(), persona_set_id(partition))


class AnalysisConfig(Config):
    window_days: int = DEFAULT_WINDOW_DAYS


@asset(
    partitions_def=persona_set_partitions,
    group_name=GROUP,
    deps=["persona_memberships"],
    automation_condition=AutomationCondition.eager(),
    description="Sizes, trait distributions with lift (clustering and analysis traits), revenue and product sales.",
)
def persona_analysis(
    context: AssetExecutionContext, config: AnalysisConfig, warehouse: WarehouseResource
) -> MaterializeResult:
    record = _record(warehouse, context.partition_key)
    table = analysis.run_analysis(warehouse.engine(), record.id, config.window_days)
    personas = store.read_personas(warehouse.engine(), record.id)
    names = names_by_id(personas)
    revenue = table[table["section"] == "revenue"].pivot_table(
        index="persona_id", columns="bucket", values="value"
    )
    summary = pd.DataFrame(
        {
            "persona": [names.get(int(p), "cohort") for p in revenue.index],
            "revenue share": revenue["revenue_share"].map("{:.1%}".format).to_numpy(),
            "average order": revenue["average_order"].map(f"{{:,.2f}} {currency()}".format).to_numpy(),
            "orders per customer": revenue["orders_per_customer"].map("{:.2f}".format).to_numpy(),
        }
    )
    quality = {r.bucket: int(r.count) for r in table[table["section"] == "quality"].itertuples()}
    context.log.info(f"analysis of {record.name!r}: {len(table):,} rows; orders {quality}")
    return MaterializeResult(
        metadata={
            "dagster/row_count": len(table),
            "purchases": markdown_table(summary),
            "analysis_traits": ", ".join(record.analysis_traits) or "none",
            "interpretation": MetadataValue.md(interpretations_markdown(personas)),
            **{f"orders_{k}": v for k, v in quality.items()},
        }
    )


@asset(
    partitions_def=persona_set_partitions,
    group_name=GROUP,
    deps=["persona_analysis"],
    automation_condition=AutomationCondition.eager(),
    description="The self-contained HTML report (Definition, Analysis, Flow).",
)
def persona_report(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    record = _record(warehouse, context.partition_key)
    path = report.write_report(warehouse.engine(), record.name)
    context.log.info(f"report written to {path}")
    personas = len(store.read_personas(warehouse.engine(), record.id))
    return MaterializeResult(
        metadata={
            "path": MetadataValue.path(str(path)),
            "bytes": path.stat().st_size,
            "dagster/row_count": personas,
        }
    )


@asset(
    partitions_def=daily_partitions,
    group_name="flow",
    description="Each ready persona set's memberships as of the day, stored as per-trait-version intervals.",
)
def membership_snapshot(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    day = dt.date.fromisoformat(context.partition_key)
    members = flow.snapshot_day(warehouse.engine(), day)
    context.log.info(
        f"snapshot of {day}: " + (", ".join(f"{k}: {v:,}" for k, v in members.items()) or "no ready set")
    )
    frame = pd.DataFrame({"persona set": list(members), "members": list(members.values())})
    return MaterializeResult(
        metadata={
            "dagster/row_count": int(sum(members.values())),
            "members": markdown_table(frame),
            "day": str(day),
        }
    )


@asset(
    partitions_def=persona_set_partitions,
    group_name=GROUP,
    deps=[AssetDep("membership_snapshot", partition_mapping=AllPartitionMapping())],
    description="Members of each persona per snapshot day, and the from -> to matrix between the first and last.",
)
def persona_flow(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    record = _record(warehouse, context.partition_key)
    engine = warehouse.engine()
    counts = flow.flow_counts(engine, record.name)
    days = sorted(counts["day"].unique())
    names = names_by_id(store.read_personas(engine, record.id))
    pivot = counts.pivot_table(index="day", columns="persona_id", values="members", fill_value=0).astype(int)
    pivot.columns = [names.get(int(c), str(c)) for c in pivot.columns]
    matrix = transition_matrix(flow.flow_transitions(engine, record.name, days[0], days[-1]))
    matrix.index = [names.get(i, i) for i in matrix.index]
    matrix.columns = [names.get(c, c) for c in matrix.columns]
    return MaterializeResult(
        metadata={
            "dagster/row_count": len(counts),
            "days": len(days),
            "members_per_day": markdown_table(pivot.tail(14).reset_index()),
            f"from_{days[0]}_to_{days[-1]}": markdown_table(matrix.reset_index(names="from \\ to")),
        }
    )


STUDY_ASSETS = [persona_analysis, persona_report, persona_flow, membership_snapshot]
