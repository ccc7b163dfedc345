"""Exports: a persona set's memberships, personas, Analysis, Flow or history streamed to CSV in flat memory."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sqlalchemy.engine import Engine

from persona_pipeline import files
from persona_pipeline.core.domain import EXPORT_KINDS, NO_RULE
from persona_pipeline.errors import AnalysisError
from persona_pipeline.persona_sets.lifecycle import require_built
from persona_pipeline.studies.flow import flow_counts, require_snapshots
from persona_pipeline.warehouse import persona_sets as store
from persona_pipeline.warehouse.bulk import stream_csv
from persona_pipeline.warehouse.memberships import CURRENT_MEMBERSHIPS

EXPORTS = EXPORT_KINDS


def personas_frame(engine: Engine, persona_set_id: int) -> pd.DataFrame:
    """The Definition view as one row per persona: size, salient defining traits, rules and interpretation."""
    rows = []
    for p in store.read_personas(engine, persona_set_id):
        story = p.interpretation
        rows.append(
            {
                "persona_id": p.persona_id,
                "name": p.name,
                "population": p.population,
                "share": round(p.share, 6),
                "defining_traits": " | ".join(d.text for d in p.defining),
                "rules": " | ".join(r.described for r in p.rules) or NO_RULE,  # with precision and coverage
                "summary": story.summary if story else "",
                "ideas": " | ".join(story.ideas) if story else "",
                "prose": story.prose if story else "",
                "prose_by": story.prose_by if story else "",
            }
        )
    return pd.DataFrame(rows)


def export_csv(engine: Engine, name: str, what: str, out: Path) -> int:
    """Stream one of the set's tables to a CSV file in flat memory; returns the bytes written."""
    record = store.get(engine, name)
    if what not in EXPORTS:
        raise AnalysisError(f"--what must be one of {', '.join(EXPORTS)}, not {what!r}")
    if what != "flow":
        require_built(record)
    if what == "history":  # as --what flow: not a file of headers alone
        require_snapshots(engine, record)
    queries = {
        # external_id: the file's own text key, where the contacts were loaded with one
        "memberships": "SELECT m.contact_id, c.external_id, m.persona_id, p.name AS persona_name, m.confidence, "  # noqa: S608
        "m.build FROM persona_memberships m JOIN personas p ON p.persona_set_id = m.persona_set_id "
        "AND p.build = m.build AND p.persona_id = m.persona_id "
        "LEFT JOIN contacts c ON c.contact_id = m.contact_id "
        f"WHERE m.persona_set_id = :id AND {CURRENT_MEMBERSHIPS} ORDER BY m.contact_id",
        # persona 0 is the whole cohort; names are the current build's (the Analysis is of that build)
        "analysis": "SELECT a.section, a.persona_id, CASE WHEN a.persona_id = 0 THEN 'whole cohort' "
        # counts as whole numbers, fractions to 6 places (as the personas export): what a spreadsheet shows
        'ELSE p.name END AS persona_name, a.trait, a.role, a.bucket, CAST(a."count" AS BIGINT) AS "count", '
        "ROUND(CAST(a.share AS NUMERIC), 6) AS share, ROUND(CAST(a.value AS NUMERIC), 6) AS value, "
        "ROUND(CAST(a.lift AS NUMERIC), 6) AS lift "
        "FROM persona_analysis a LEFT JOIN personas p ON p.persona_set_id = a.persona_set_id "
        "AND p.persona_id = a.persona_id "
        "AND p.build = (SELECT s.current_build FROM persona_sets s WHERE s.id = a.persona_set_id) "
        "WHERE a.persona_set_id = :id",
        # each row named as the build it came from named the persona
        "history": "SELECT h.contact_id, c.external_id, h.persona_id, p.name AS persona_name, h.valid_from, "
        "h.valid_to, h.build FROM membership_history h LEFT JOIN contacts c ON c.contact_id = h.contact_id "
        "LEFT JOIN personas p ON p.persona_set_id = h.persona_set_id AND p.build = h.build "
        "AND p.persona_id = h.persona_id "
        "WHERE h.persona_set_id = :id ORDER BY h.contact_id, h.valid_from",
    }
    with files.atomic_output(out) as handle:
        if what == "flow":
            handle.write(flow_counts(engine, record.name).to_csv(index=False).encode())
        elif what == "personas":
            handle.write(personas_frame(engine, record.id).to_csv(index=False).encode())
        else:
            stream_csv(engine, queries[what], handle, {"id": record.id})
    return out.stat().st_size
