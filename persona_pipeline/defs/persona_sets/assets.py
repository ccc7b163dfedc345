"""The persona set chain: one dynamic partition per persona set; each asset calls one build step."""

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    Config,
    MetadataValue,
    Output,
    TableColumn,
    TableRecord,
    TableSchema,
    asset,
)

from persona_pipeline.core.domain import DEFAULT_MAX_QUARANTINE_SHARE, k_rows
from persona_pipeline.core.model import BuildOutcome
from persona_pipeline.core.render.markdown import personas_markdown
from persona_pipeline.defs.persona_sets.partitions import persona_set_id, persona_set_partitions
from persona_pipeline.defs.shared.metadata import markdown_table
from persona_pipeline.defs.shared.resources import WarehouseResource
from persona_pipeline.persona_sets import build as steps
from persona_pipeline.persona_sets.build import marks_errors

GROUP = "persona_sets"
QUARANTINE_CHECK = "quarantine_share_within_limit"


class ValidationConfig(Config):
    max_quarantine_share: float = DEFAULT_MAX_QUARANTINE_SHARE


def cohort_traits_asset(cohorts: list[AssetKey]) -> AssetsDefinition:
    """The chain's first asset; `cohorts` are the cohort models it reads from (lineage in the UI)."""

    @asset(
        partitions_def=persona_set_partitions,
        group_name=GROUP,
        deps=cohorts,
        description="The cohort's contacts with the persona set's clustering traits, read in bulk from the warehouse.",
    )
    def cohort_traits(context: AssetExecutionContext, warehouse: WarehouseResource) -> Output:
        engine = warehouse.engine()
        with marks_errors(engine, persona_set_id(context.partition_key)):
            ctx = steps.context_for(engine, persona_set_id(context.partition_key))
            refreshed = steps.begin(engine, ctx)
            if refreshed:
                context.log.info(f"rebuilt SQL models whose SQL or sources changed: {', '.join(refreshed)}")
            frame = steps.extract_cohort(engine, ctx)
            context.log.info(
                f"cohort {ctx.record.cohort!r}: {len(frame):,} contacts, {len(ctx.traits)} traits"
            )
            return Output(
                frame,
                metadata={
                    "dagster/row_count": len(frame),
                    "persona_set": ctx.record.name,
                    "cohort": ctx.record.cohort,
                    "rebuilt models": ", ".join(refreshed) or "none (the cohort was current)",
                    "traits": ", ".join(t.name for t in ctx.traits),
                    "preview": markdown_table(frame.head(5)),
                },
            )

    return cohort_traits


@asset(
    partitions_def=persona_set_partitions,
    group_name=GROUP,
    check_specs=[
        AssetCheckSpec(
            QUARANTINE_CHECK,
            asset="validated_traits",
            blocking=True,
            description="Stops the build when more than the allowed share of the cohort's rows fail validation.",
        )
    ],
    description="Rows that pass the Pandera schema generated from the trait catalog; the rest are quarantined.",
)
def validated_traits(
    context: AssetExecutionContext, config: ValidationConfig, warehouse: WarehouseResource, cohort_traits
):  # noqa: ANN001, ANN201 - Dagster inputs and a generator of events
    engine = warehouse.engine()
    with marks_errors(engine, persona_set_id(context.partition_key)):
        ctx = steps.context_for(engine, persona_set_id(context.partition_key))
        result = steps.validate_cohort(engine, ctx, cohort_traits)
        summary = result.summary()
        context.log.info(
            f"validated {result.total_rows:,} rows: {len(result.valid):,} valid, {result.failed_rows:,} quarantined"
        )
        verdict = steps.judge_quarantine(engine, ctx, result, config.max_quarantine_share)
        yield Output(
            result.valid,
            metadata={
                "dagster/row_count": len(result.valid),
                "rows_checked": result.total_rows,
                "rows_quarantined": result.failed_rows,
                "quarantine_share": result.failed_share,
                "quarantine_by_reason": markdown_table(summary)
                if not summary.empty
                else MetadataValue.text("none"),
            },
        )
        yield AssetCheckResult(
            check_name=QUARANTINE_CHECK,
            passed=verdict.passed,
            severity=AssetCheckSeverity.ERROR,
            description=verdict.message,
            metadata={"quarantine_share": result.failed_share, "rows_quarantined": result.failed_rows},
        )


@asset(
    partitions_def=persona_set_partitions,
    group_name=GROUP,
    description="Features, the number of personas, the fit, and persona ids matched to the previous build.",
)
def persona_model(
    context: AssetExecutionContext, warehouse: WarehouseResource, validated_traits: pd.DataFrame
) -> Output:
    engine = warehouse.engine()
    with marks_errors(engine, persona_set_id(context.partition_key)):
        ctx = steps.context_for(engine, persona_set_id(context.partition_key))
        outcome = steps.fit_personas(engine, ctx, validated_traits, progress=context.log.info)
        scores = k_rows(outcome.k_choice.scores, outcome.model.k)
        metadata = {
            "personas": outcome.model.k,
            "k_reason": outcome.k_choice.reason,
            "stability": round(outcome.stability, 4),
            "build": ctx.build,
        }
        if outcome.dropped_traits:
            metadata["dropped_constant_traits"] = ", ".join(outcome.dropped_traits)
        if scores:
            metadata["k_scores"] = markdown_table(pd.DataFrame(scores))
        return Output(outcome, metadata=metadata)


@asset(
    partitions_def=persona_set_partitions,
    group_name=GROUP,
    description="Each persona's name, avatar, population, defining traits and rules, stored as the current build.",
)
def personas(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    validated_traits: pd.DataFrame,
    persona_model: BuildOutcome,
) -> Output:
    engine = warehouse.engine()
    with marks_errors(engine, persona_set_id(context.partition_key)):
        ctx = steps.context_for(engine, persona_set_id(context.partition_key))
        result, summary = steps.make_personas(engine, ctx, validated_traits, persona_model)
        table = steps.personas_table(result)
        figure = summary.identity_figure
        return Output(
            {"build": ctx.build, "personas": [p.to_row() for p in result]},
            metadata={
                "dagster/row_count": len(result),
                "personas": MetadataValue.table(
                    records=[TableRecord(row) for row in table],
                    schema=TableSchema(
                        columns=[
                            TableColumn("persona_id", "int"),
                            TableColumn("name", "string"),
                            TableColumn("population", "int"),
                            TableColumn("share", "float"),
                            TableColumn("defining_traits", "string"),
                        ]
                    ),
                ),
                "definition": MetadataValue.md(personas_markdown(ctx.record.name, result)),
                "stability": round(persona_model.stability, 4),
                **(figure.metadata() if figure is not None else {}),
            },
        )


@asset(
    partitions_def=persona_set_partitions,
    group_name=GROUP,
    description="Every valid cohort contact with its persona and confidence, written to the warehouse.",
)
def persona_memberships(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    validated_traits: pd.DataFrame,
    persona_model: BuildOutcome,
    personas: dict,
) -> Output:
    engine = warehouse.engine()
    with marks_errors(engine, persona_set_id(context.partition_key)):
        ctx = steps.context_for(engine, persona_set_id(context.partition_key))
        ctx.build = personas["build"]  # the build the personas step just stored
        written = steps.write_memberships(engine, ctx, validated_traits, persona_model)
        context.log.info(f"wrote {written:,} memberships; persona set {ctx.record.name!r} is ready")
        return Output(
            None,
            metadata={
                "dagster/row_count": written,
                "mean_confidence": round(float(persona_model.confidence.mean()), 4) if written else 0.0,
                "table": "persona_memberships",
            },
        )


def persona_set_assets(cohorts: list[AssetKey]) -> list[AssetsDefinition]:
    """The chain's assets, from the cohort's traits to the memberships."""
    return [cohort_traits_asset(cohorts), validated_traits, persona_model, personas, persona_memberships]
