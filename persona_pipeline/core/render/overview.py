"""The persona sets at a glance: one row per set with its status, cohort, personas, Explore flag, last build
and a link to its report, as an HTML page beside the reports and as Markdown for the Dagster UI.

Pure: the service hands in typed rows. Every user text is escaped for its context.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from persona_pipeline.core.render.html import escape as _e
from persona_pipeline.core.render.markdown import escape as _md
from persona_pipeline.core.render.report import STYLE

COLUMNS = [
    "persona set",
    "status",
    "cohort",
    "personas",
    "contacts",
    "in Explore",
    "last build (UTC)",
    "report",
]


@dataclass(frozen=True)
class SetOverview:
    """One persona set as the overview lists it; report: its HTML file when one was written."""

    name: str
    status: str
    error: str | None
    cohort: str
    personas: int | None  # None until its first build lands
    contacts: int | None
    show_in_explore: bool
    built_at: dt.datetime | None
    report: Path | None

    def cells(self) -> list[str]:
        """Plain-text cells in COLUMNS order (the report as its file name)."""
        status = f"{self.status}: {self.error}" if self.error else self.status
        return [
            self.name,
            status,
            self.cohort,
            "-" if self.personas is None else str(self.personas),
            "-" if self.contacts is None else f"{self.contacts:,}",
            "yes" if self.show_in_explore else "no",
            self.built_at.strftime("%Y-%m-%d %H:%M") if self.built_at else "never",
            self.report.name if self.report else "-",
        ]


def markdown(rows: list[SetOverview]) -> str:
    """A Markdown table; the report column links to the file (file:// URL) where there is one."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        cells = [_md(c) for c in row.cells()]
        if row.report:
            cells[-1] = f"[{_md(row.report.name)}]({row.report.resolve().as_uri()})"
        lines.append("| " + " | ".join(cells) + " |")
    if not rows:
        lines.append(
            "| no persona set yet: `persona-pipeline persona-set create` |" + " |" * (len(COLUMNS) - 1)
        )
    return "\n".join(lines)


def render(rows: list[SetOverview], here: Path) -> str:
    """The page, written into `here` (the reports folder): report links are relative to it."""
    head = "".join(f"<th>{_e(c)}</th>" for c in COLUMNS)
    body = []
    for row in rows:
        cells = [f"<td>{_e(c)}</td>" for c in row.cells()]
        if row.report:
            link = os.path.relpath(row.report, here)
            cells[-1] = f'<td><a href="{_e(link)}">{_e(row.report.name)}</a></td>'
        body.append(f"<tr class='status-{_e(row.status)}'>{''.join(cells)}</tr>")
    empty = "" if rows else "<p>No persona set yet: <code>persona-pipeline persona-set create</code>.</p>"
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Persona sets</title>"
        f"<style>{STYLE}</style></head><body><h1>Persona sets</h1>"
        f"<table class='overview'><tr>{head}</tr>{''.join(body)}</table>{empty}</body></html>"
    )
