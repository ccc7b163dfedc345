"""One asset per SQL model, with lineage from ref() and source()."""

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    asset,
)

from persona_pipeline.defs.shared.resources import WarehouseResource
from persona_pipeline.sql_models import SqlModel, discover, render, run_model
from persona_pipeline.warehouse.tables import SOURCE_TABLES

SOURCE_SPECS = [
    AssetSpec(
        AssetKey(["sources", name]),
        description=f"The warehouse table {name!r}, written by `persona-pipeline seed` or `load`.",
        group_name="sources",
    )
    for name in SOURCE_TABLES
]


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
                "table": MetadataValue.text(model.name),
                "sql": MetadataValue.md(f"```sql\n{render(model, engine)}\n```"),
            }
        )

    return _run


def sql_model_assets() -> list[AssetsDefinition]:
    models = discover()
    return [_model_asset(m, models) for m in models.values()]


def cohort_keys() -> list[AssetKey]:
    return [model_key(m) for m in discover().values() if m.is_cohort]
