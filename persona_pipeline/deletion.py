"""Deleting persona sets and cohorts, behind the lineage guard: refused while anything consumes them."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from persona_pipeline import pipelines
from persona_pipeline.core.lineage import cohort_consumers, guard, persona_set_consumers
from persona_pipeline.sql_models import discover, require_cohort
from persona_pipeline.warehouse import persona_sets as store
from persona_pipeline.warehouse.engine import quote


def delete_persona_set(engine: Engine, name: str) -> list[str]:
    """Delete a persona set's catalog row and stored results, its Dagster partition and its report.

    Refused while a pipeline's payload holds it.
    """
    from persona_pipeline.defs.persona_assets import persona_set_partitions
    from persona_pipeline.runner import instance
    from persona_pipeline.studies import default_report_path

    record = store.get(engine, name)
    guard(
        f"persona set {record.name!r}",
        persona_set_consumers(record.name, pipelines.refs(engine)),
        "Remove it from those pipelines' payload, or delete them (persona-pipeline pipeline delete NAME), first.",
    )
    report = default_report_path(record)
    store.delete(engine, record.id)
    removed = [f"persona set {record.name!r} and its stored results"]
    dagster = instance()
    if dagster.has_dynamic_partition(persona_set_partitions.name, record.partition_key):
        dagster.delete_dynamic_partition(persona_set_partitions.name, record.partition_key)
        removed.append(f"Dagster partition {record.partition_key}")
    if report.exists():
        report.unlink()
        removed.append(f"report {report}")
    return removed


def delete_cohort(engine: Engine, cohort: str) -> list[str]:
    """Delete a cohort model: its table is dropped and its SQL file kept beside it as <name>.sql.deleted."""
    models = discover()
    model = require_cohort(models, cohort)
    guard(
        f"cohort {cohort!r}",
        cohort_consumers(
            cohort,
            [(r.name, r.cohort) for r in store.list_all(engine)],
            pipelines.refs(engine),
            {name: m.refs for name, m in models.items()},
        ),
        "Delete those consumers or point them elsewhere (persona-set update --cohort, pipeline delete) first.",
    )
    removed = []
    with engine.begin() as conn:
        if sa.inspect(conn).has_table(cohort):
            conn.execute(sa.text(f"DROP TABLE {quote(engine, cohort)}"))
            removed.append(f"table {cohort}")
    kept = Path(f"{model.path}.deleted")
    model.path.rename(kept)
    removed.append(f"model file (kept as {kept})")
    return removed
