"""The persona set chain: one dynamic partition per persona set; each asset calls one build step."""

from typing import Any

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
from persona_pipeline.defs.shared.metadata import markdown_table, table_metadata
from persona_pipeline.defs.shared.resources import WarehouseResource
from persona_pipeline.persona_sets import build as steps
from persona_pipeline.persona_sets.build import marks_errors

GROUP = "persona_sets"
STABILITY_CHECK = "split_half_stability"
SMALLEST_CHECK = "smallest_persona_share"
DRIFT_CHECK = "unchanged_contacts_keep_persona"
MEMBERSHIPS_CHECK = "memberships_match_valid_rows"


def _check(name: str, asset: str, description: str, blocking: bool = False) -> AssetCheckSpec:
    """A check per persona set (partition): each set's result is its own, not whichever set built last."""
    return AssetCheckSpec(
        name, asset=asset, blocking=blocking, description=description, partitions_def=persona_set_partitions
    )


def _result(
    name: str, verdict: steps.Verdict, severity: AssetCheckSeverity, **figures: Any
) -> AssetCheckResult:
    return AssetCheckResult(
        check_name=name,
        passed=verdict.passed,
        severity=severity,
        description=verdict.message,
        metadata=figures,
    )


CONTACTS = AssetKey(["sources", "contacts"])  # the traits are read from it, the cohort gives only the ids
QUARANTINE_CHECK = "quarantine_share_within_limit"


class ValidationConfig(Config):
    max_quarantine_share: float = DEFAULT_MAX_QUARANTINE_SHARE


def cohort_traits_asset(cohorts: list[AssetKey]) -> AssetsDefinition:
    """The chain's first asset; `cohorts` are the cohort models it reads from (lineage in the UI)."""

    @asset(
        partitions_def=persona_set_partitions,
        group_name=GROUP,
        deps=[*cohorts, CONTACTS],
        kinds={"pandas"},
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
    kinds={"pandera"},
    partitions_def=persona_set_partitions,
    group_name=GROUP,
    check_specs=[
        _check(
            QUARANTINE_CHECK,
            "validated_traits",
            "Stops the build when more than the allowed share of the cohort's rows fail validation.",
            blocking=True,
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
        yield _result(
            QUARANTINE_CHECK,
            verdict,
            AssetCheckSeverity.ERROR,
            quarantine_share=MetadataValue.float(round(result.failed_share, 4)),
            rows_quarantined=result.failed_rows,
        )


@asset(
    kinds={"scikit-learn"},
    partitions_def=persona_set_partitions,
    group_name=GROUP,
    check_specs=[
        _check(
            STABILITY_CHECK,
            "persona_model",
            "Warns when fits on two halves of the cohort disagree (split-half ARI under 0.8).",
        )
    ],
    description="Features, the number of personas, the fit, and persona ids matched to the previous build.",
)
def persona_model(
    context: AssetExecutionContext, warehouse: WarehouseResource, validated_traits: pd.DataFrame
):  # noqa: ANN201 - a generator of an output and a check result
    engine = warehouse.engine()
    with marks_errors(engine, persona_set_id(context.partition_key)):
        ctx = steps.context_for(engine, persona_set_id(context.partition_key))
        outcome = steps.fit_personas(engine, ctx, validated_traits, progress=context.log.info)
        scores = k_rows(outcome.k_choice.scores, outcome.model.k)
        metadata = {
            "personas": outcome.model.k,
            "method": str(outcome.model.method),
            "k_reason": outcome.k_choice.reason,
            "stability": round(outcome.stability, 4),
            "build": ctx.build,
        }
        if outcome.dropped_traits:
            metadata["left_out_traits"] = ", ".join(outcome.dropped_traits)  # 'name (why)' each
        if scores:
            metadata["k_scores"] = markdown_table(pd.DataFrame(scores))
        yield Output(outcome, metadata=metadata)
        verdict = steps.judge_stability(outcome.stability)
        yield _result(
            STABILITY_CHECK, verdict, AssetCheckSeverity.WARN, stability=round(outcome.stability, 4)
        )


@asset(
    kinds={"python"},
    partitions_def=persona_set_partitions,
    group_name=GROUP,
    check_specs=[
        _check(SMALLEST_CHECK, "personas", "Warns when a persona holds under 3% of the cohort."),
        _check(
            DRIFT_CHECK,
            "personas",
            "Warns when a rebuild moves more than 5% of the contacts whose traits did not change.",
        ),
    ],
    description="Each persona's name, avatar, population, defining traits and rules, stored as the current build.",
)
def personas(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    validated_traits: pd.DataFrame,
    persona_model: BuildOutcome,
):  # noqa: ANN201 - a generator of an output and check results
    engine = warehouse.engine()
    with marks_errors(engine, persona_set_id(context.partition_key)):
        ctx = steps.context_for(engine, persona_set_id(context.partition_key))
        result, summary = steps.make_personas(engine, ctx, validated_traits, persona_model)
        table = steps.personas_table(result)
        figure = summary.identity_figure
        yield Output(
            {"build": ctx.build, "personas": [p.to_row() for p in result]},
            metadata={
                "dagster/row_count": len(result),
                "personas": MetadataValue.table(
                    records=[TableRecord(row) for row in table],
                    schema=TableSchema(
                        columns=[
                            TableColumn("persona_id", "int"),
                            TableColumn("name", "string"),
                            TableColumn("contacts", "string"),
                            TableColumn("share", "string", description="of the cohort's valid contacts"),
                            TableColumn("defining traits", "string"),
                        ]
                    ),
                ),
                "definition": MetadataValue.md(personas_markdown(ctx.record.name, result)),
                "stability": round(persona_model.stability, 4),
                **(figure.metadata() if figure is not None else {}),
            },
        )
        smallest = min(p.share for p in result)
        yield _result(
            SMALLEST_CHECK,
            steps.judge_smallest(result),
            AssetCheckSeverity.WARN,
            smallest_share=MetadataValue.float(round(smallest, 4)),
        )
        kept = figure.unchanged_share if figure is not None else None
        yield _result(
            DRIFT_CHECK,
            steps.judge_drift(summary),
            AssetCheckSeverity.WARN,
            **({"unchanged_kept_share": MetadataValue.float(round(kept, 4))} if kept is not None else {}),
        )


@asset(
    kinds={"table"},
    partitions_def=persona_set_partitions,
    group_name=GROUP,
    check_specs=[
        _check(
            MEMBERSHIPS_CHECK,
            "persona_memberships",
            "Stops the Analysis and report unless the stored build holds one membership per valid cohort row.",
            blocking=True,
        )
    ],
    description="Every valid cohort contact with its persona and confidence, written to the warehouse.",
    # upstream in the lineage, not loaded: the model's outcome carries the contact ids (loading the cohort
    # again held 2 GB more at 10M contacts, the build's peak)
    deps=[validated_traits],
)
def persona_memberships(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    persona_model: BuildOutcome,
    personas: dict,
):  # noqa: ANN201 - a generator of an output and a check result
    engine = warehouse.engine()
    with marks_errors(engine, persona_set_id(context.partition_key)):
        ctx = steps.context_for(engine, persona_set_id(context.partition_key))
        ctx.build = personas["build"]  # the build the personas step just stored
        written = steps.write_memberships(engine, ctx, persona_model)
        context.log.info(f"wrote {written:,} memberships; persona set {ctx.record.name!r} is ready")
        yield Output(
            None,
            metadata={
                "dagster/row_count": written,
                "mean_confidence": round(float(persona_model.confidence.mean()), 4) if written else 0.0,
                **table_metadata(engine, "persona_memberships"),
            },
        )
        described = {int(row["persona_id"]): int(row["population"]) for row in personas["personas"]}
        valid_rows = len(persona_model.persona_ids)
        verdict = steps.judge_memberships(engine, ctx, valid_rows, described)
        yield _result(MEMBERSHIPS_CHECK, verdict, AssetCheckSeverity.ERROR, valid_rows=valid_rows)


def persona_set_assets(cohorts: list[AssetKey]) -> list[AssetsDefinition]:
    """The chain's assets, from the cohort's traits to the memberships."""
    return [cohort_traits_asset(cohorts), validated_traits, persona_model, personas, persona_memberships]
