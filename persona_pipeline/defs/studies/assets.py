"""Studying persona sets in Dagster: Analysis and report per set, daily membership snapshots, Flow per set."""

import datetime as dt

import pandas as pd
from dagster import (
    AllPartitionMapping,
    AssetDep,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AutomationCondition,
    BackfillPolicy,
    Config,
    MaterializeResult,
    MetadataValue,
    PartitionsDefinition,
    asset,
)
from pydantic import Field

from persona_pipeline.config import currency
from persona_pipeline.core.analysis import NO_ORDERS, OrderQuality, PurchaseWindow, purchase_table
from persona_pipeline.core.domain import DEFAULT_WINDOW_DAYS, PersonaSet, names_by_id
from persona_pipeline.core.flow import transition_matrix
from persona_pipeline.core.render.markdown import interpretations_markdown
from persona_pipeline.defs.persona_sets.assets import GROUP
from persona_pipeline.defs.persona_sets.partitions import persona_set_id, persona_set_partitions
from persona_pipeline.defs.shared.metadata import markdown_table, table_metadata
from persona_pipeline.defs.shared.resources import WarehouseResource
from persona_pipeline.studies import analysis, flow, report
from persona_pipeline.studies.prose import prose_status
from persona_pipeline.warehouse import persona_sets as store


def _record(warehouse: WarehouseResource, partition: str) -> PersonaSet:
    return store.get_by_id(warehouse.engine(), persona_set_id(partition))


class AnalysisConfig(Config):
    window_days: int | None = Field(
        default=None,
        description=f"Order window in calendar days up to the latest order; kept with the set once given. "
        f"Unset: the set's own window (default {DEFAULT_WINDOW_DAYS}).",
    )


@asset(
    kinds={"pandas", "table"},
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
    purchases = purchase_table(table)
    window = PurchaseWindow.from_table(table)
    money = window.currency if window else currency()
    summary = pd.DataFrame(
        {
            "persona": [names.get(int(p), "cohort") for p in purchases.index],
            "contacts": purchases["contacts"].map("{:,.0f}".format).to_numpy(),
            "share of contacts": purchases["contact_share"].map("{:.1%}".format).to_numpy(),
            f"revenue ({money})": purchases["revenue"].map("{:,.2f}".format).to_numpy(),
            "share of revenue": purchases["revenue_share"].map("{:.1%}".format).to_numpy(),
            "orders": purchases["orders"].map("{:,.0f}".format).to_numpy(),
            "ordering customers": purchases["customers"].map("{:,.0f}".format).to_numpy(),
            f"average order ({money})": purchases["average_order"].map("{:,.2f}".format).to_numpy(),
            "orders per customer": purchases["orders_per_customer"].map("{:.2f}".format).to_numpy(),
        }
    )
    quality = {r.bucket: int(r.count) for r in table[table["section"] == "quality"].itertuples()}
    context.log.info(f"analysis of {record.name!r}: {len(table):,} rows. {OrderQuality.sentence(quality)}")
    stories = [p.interpretation for p in personas if p.interpretation is not None]
    prose = prose_status(stories)
    if any(s.prose_note for s in stories):
        context.log.warning(f"prose for {record.name!r}: {prose}")
    return MaterializeResult(
        metadata={
            "dagster/row_count": len(table),
            **table_metadata(warehouse.engine(), "persona_analysis"),
            "purchases": markdown_table(summary) if not purchases.empty else NO_ORDERS,
            "order window": window.text() if window else "not recorded (analysed before windows were kept)",
            "analysis_traits": ", ".join(record.analysis_traits) or "none",
            "interpretation": MetadataValue.md(interpretations_markdown(personas)),
            "prose": prose,
            **{f"orders_{k}": v for k, v in quality.items()},
        }
    )


# Eager, except that a missing dependency does not hold it back: a set's Flow exists only once memberships
# were snapshotted, and a set without a snapshot is no reason to leave its report out of date. (Flow itself
# is not automated: it changes only with a snapshot, and the UI marks it stale after a snapshot or a rebuild.)
WHEN_INPUTS_CHANGE = AutomationCondition.eager().without(~AutomationCondition.any_deps_missing())


@asset(
    kinds={"html"},
    partitions_def=persona_set_partitions,
    group_name=GROUP,
    deps=["persona_analysis", "personas", "persona_flow"],
    automation_condition=WHEN_INPUTS_CHANGE,
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


def membership_snapshot_asset(cohorts: list[AssetKey], days: PartitionsDefinition) -> AssetsDefinition:
    """The daily snapshot reads every set's memberships, the cohorts they were built on and trait history."""

    @asset(
        name="membership_snapshot",
        partitions_def=days,
        backfill_policy=BackfillPolicy.single_run(),  # a backfill of N days is one run, not N
        kinds={"table"},
        group_name="flow",
        deps=[
            AssetDep("persona_memberships", partition_mapping=AllPartitionMapping()),
            AssetKey(["sources", "trait_history"]),
            *cohorts,
        ],
        description="Each ready persona set's memberships as of the day, stored as per-trait-version intervals.",
    )
    def _snapshot(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
        return _take_snapshot(context, warehouse)

    return _snapshot


def _take_snapshot(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    """Every day of the run's partitions, oldest first: a backfill is one run over a range of days."""
    days = sorted(dt.date.fromisoformat(k) for k in context.partition_keys)
    rows = []
    for day in days:
        taken = flow.snapshot_day(warehouse.engine(), day)
        context.log.info(
            f"snapshot of {day}: "
            + (
                ", ".join(f"{k}: {v:,}" for k, v in taken.members.items())
                or ("no set could be snapshotted" if taken.skipped else "no ready set")
            )
        )
        for name, why in taken.skipped.items():
            context.log.warning(f"snapshot of {day}: persona set {name!r} skipped: {why}")
        rows.extend(
            {"day": str(day), "persona set": name, "members": f"{n:,}"} for name, n in taken.members.items()
        )
        rows.extend({"day": str(day), "persona set": name, "members": "skipped"} for name in taken.skipped)
    frame = pd.DataFrame(rows, columns=["day", "persona set", "members"])
    return MaterializeResult(
        metadata={
            "dagster/row_count": int(
                pd.to_numeric(frame["members"].str.replace(",", ""), errors="coerce").sum()
            ),
            "members": markdown_table(frame.tail(30)),
            **table_metadata(warehouse.engine(), "membership_history"),
            "days": f"{days[0]} to {days[-1]} ({len(days)} day{'s' if len(days) > 1 else ''})",
        }
    )


@asset(
    kinds={"pandas"},
    partitions_def=persona_set_partitions,
    group_name=GROUP,
    deps=[
        AssetDep("membership_snapshot", partition_mapping=AllPartitionMapping()),
        "persona_memberships",
        "personas",
    ],
    description="Members of each persona per snapshot day, and the from -> to matrix between the first and last.",
)
def persona_flow(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    record = _record(warehouse, context.partition_key)
    engine = warehouse.engine()
    if not flow.has_snapshots(engine, record.id):  # automation may reach a set before its first snapshot
        context.log.info(f"no membership snapshot of {record.name!r} yet")
        return MaterializeResult(
            metadata={
                "dagster/row_count": 0,
                "days": 0,
                "first and last day": "no snapshot yet: `persona-pipeline flow snapshot` or the "
                "snapshot_memberships job takes one",
            }
        )
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
            "first and last day": f"{days[0]} to {days[-1]}",
            "transitions": markdown_table(matrix.reset_index(names="from \\ to")),
        }
    )


def study_assets(cohorts: list[AssetKey], days: PartitionsDefinition) -> list[AssetsDefinition]:
    """Analysis, report and Flow per set, and the daily snapshot over `days` (which reads `cohorts`)."""
    return [persona_analysis, persona_report, persona_flow, membership_snapshot_asset(cohorts, days)]
