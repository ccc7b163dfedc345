"""The persona set report: its data gathered from the warehouse, rendered by core.render.report."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy.engine import Engine

from persona_pipeline import files
from persona_pipeline.config import currency, reports_dir
from persona_pipeline.core import flow
from persona_pipeline.core.domain import PersonaSet
from persona_pipeline.core.render.report import ReportData
from persona_pipeline.core.render.report import render as render_report
from persona_pipeline.persona_sets.lifecycle import require_built
from persona_pipeline.studies.analysis import read_analysis, run_analysis
from persona_pipeline.studies.flow import flow_history
from persona_pipeline.warehouse import persona_sets as store
from persona_pipeline.warehouse.trait_catalog import load_catalog


def report_data(engine: Engine, name: str) -> ReportData:
    record = store.get(engine, name)
    require_built(record)
    build = store.current_build(engine, record)
    table = read_analysis(engine, record.id)
    if table.empty:
        table = run_analysis(engine, record.id)
    history, days = flow_history(engine, record.id)
    return ReportData(
        set_name=record.name,
        cohort=record.cohort,
        build=build,
        personas=store.read_personas(engine, record.id),
        analysis=table,
        flow_days=[str(d) for d in days],
        flow_counts=flow.daily_counts(history, days) if days else None,
        trajectories=flow.trajectories(history, days) if days else [],
        status=str(record.status),
        built_at=build.built_at or record.built_at,
        show_in_explore=record.show_in_explore,
        traits={t.name: t for t in load_catalog(engine).traits},
        currency=currency(),
    )


def default_report_path(record: PersonaSet) -> Path:
    slug = re.sub(r"[^a-z0-9]+", "-", record.name.lower()).strip("-")[:60] or "persona-set"
    return reports_dir() / f"{record.id}-{slug}.html"


def write_report(engine: Engine, name: str, out: str | Path | None = None) -> Path:
    """Write the set's self-contained HTML report; returns its path."""
    data = report_data(engine, name)
    path = Path(out) if out else default_report_path(store.get(engine, name))
    return files.write_text(path, render_report(data))
