"""One asset per SQL model, with lineage from ref() and source()."""

import datetime as dt

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSelection,
    AutomationCondition,
    DataVersion,
    MaterializeResult,
    MetadataValue,
    SourceAsset,
    asset,
    define_asset_job,
    observable_source_asset,
)

from persona_pipeline.defs.shared.conventions import DOMAIN_TAG
from persona_pipeline.defs.shared.metadata import table_metadata
from persona_pipeline.defs.shared.resources import WarehouseResource
from persona_pipeline.sql_models import SqlModel, discover, render, run_model
from persona_pipeline.warehouse import changes
from persona_pipeline.warehouse.tables import SOURCE_TABLES

OBSERVE_SOURCES_JOB = "observe_sources"
# Observed every few minutes by the automation sensor, and by the CLI after each load: a new version marks the
# models (and what they feed) stale in the UI, whoever wrote the table.
OBSERVE_EVERY = AutomationCondition.cron_tick_passed("*/5 * * * *").since_last_handled()


def _source_asset(name: str) -> SourceAsset:
    """The warehouse table `name` as an observable source; its data version is the table's change counter."""

    @observable_source_asset(
        key=AssetKey(["sources", name]),
        group_name="sources",
        description=f"The warehouse table {name!r}, written by `persona-pipeline seed` or `load` (or your ETL).",
        required_resource_keys={"warehouse"},
        automation_condition=OBSERVE_EVERY,
        metadata={"dagster/table_name": name},
        tags={DOMAIN_TAG: "sources"},
    )
    def _observe(context: AssetExecutionContext) -> DataVersion:
        version = changes.versions(context.resources.warehouse.engine(), [name])[name]
        if version is None:  # no table yet, or no right to count its changes: treat every look as a change
            return DataVersion(f"uncounted@{dt.datetime.now(dt.UTC).isoformat()}")
        return DataVersion(str(version))

    return _observe


SOURCE_ASSETS = [_source_asset(name) for name in SOURCE_TABLES]
observe_sources_job = define_asset_job(
    OBSERVE_SOURCES_JOB,
    selection=AssetSelection.assets(*(a.key for a in SOURCE_ASSETS)),
    description="Read the source tables' change counters, so the UI marks what reads a changed table stale.",
)


def model_key(model: SqlModel) -> AssetKey:
    return AssetKey([model.folder or "models", model.name])


def _model_asset(model: SqlModel, models: dict[str, SqlModel]) -> AssetsDefinition:
    deps = [model_key(models[r]) for r in model.refs] + [AssetKey(["sources", s]) for s in model.sources]

    @asset(
        key=model_key(model),
        deps=deps,
        group_name=model.folder or "models",
        description=(
            model.template.splitlines()[0].lstrip("- ") if model.template.startswith("--") else None
        ),
        kinds={"sql"},
        metadata={"path": MetadataValue.path(str(model.path))},
    )
    def _run(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
        engine = warehouse.engine()
        rows = run_model(engine, model, models)
        context.log.info(f"{model.name}: {rows:,} rows")
        return MaterializeResult(
            metadata={
                "dagster/row_count": rows,
                **table_metadata(engine, model.name),
                "sql": MetadataValue.md(f"```sql\n{render(model, engine)}\n```"),
            }
        )

    return _run


def sql_model_assets() -> list[AssetsDefinition]:
    models = discover()
    return [_model_asset(m, models) for m in models.values()]


def cohort_keys() -> list[AssetKey]:
    return [model_key(m) for m in discover().values() if m.is_cohort]
