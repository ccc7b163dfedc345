"""The persona sets overview: every set's status, cohort, personas and report, for people who open the UI."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from sqlalchemy.engine import Engine

from persona_pipeline import files
from persona_pipeline.config import reports_dir
from persona_pipeline.core.domain import PersonaSetStatus
from persona_pipeline.core.render.overview import SetOverview, markdown, render
from persona_pipeline.studies.report import default_report_path
from persona_pipeline.warehouse import persona_sets as store

__all__ = ["overview_rows", "overview_fingerprint", "write_overview", "default_overview_path", "markdown"]


def overview_rows(engine: Engine) -> list[SetOverview]:
    """Every persona set, oldest first, with its current build's figures (a set being rebuilt shows its last)."""
    rows = []
    for record in store.list_all(engine):
        built = record.current_build is not None
        personas = store.read_personas(engine, record.id) if built else []
        report = default_report_path(record)
        rows.append(
            SetOverview(
                name=record.name,
                status=str(record.status),
                error=record.error,
                cohort=record.cohort,
                personas=len(personas) if built else None,
                contacts=sum(p.population for p in personas) if built else None,
                show_in_explore=record.show_in_explore,
                built_at=record.built_at,
                report=report if report.exists() else None,
            )
        )
    return rows


def overview_fingerprint(engine: Engine) -> str:
    """Changes when the overview should be refreshed: a set built, errored, renamed, shown, hidden or deleted.
    Queued and building count as one "pending" state, so a build refreshes the page once, when it ends (with
    a sensor ticking every few seconds, each step of a build was a refresh run of its own)."""
    pending = {str(PersonaSetStatus.QUEUED), str(PersonaSetStatus.BUILDING)}
    rows = [
        [r.name, "pending"] if r.status in pending else [*r.cells(), str(r.report)]
        for r in overview_rows(engine)
    ]
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:16]


def default_overview_path() -> Path:
    return reports_dir() / "index.html"


def write_overview(engine: Engine) -> tuple[Path, list[SetOverview]]:
    """Write the overview page beside the reports (index.html); returns its path and its rows."""
    rows = overview_rows(engine)
    path = default_overview_path()
    files.write_text(path, render(rows, path.parent))
    return path, rows
