"""Exports: a persona set's memberships, Analysis, Flow or history streamed to CSV in flat memory."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine

from persona_pipeline import files
from persona_pipeline.core.domain import EXPORT_KINDS
from persona_pipeline.errors import AnalysisError
from persona_pipeline.persona_sets.lifecycle import require_built
from persona_pipeline.studies.flow import flow_counts
from persona_pipeline.warehouse import persona_sets as store
from persona_pipeline.warehouse.bulk import stream_csv
from persona_pipeline.warehouse.memberships import CURRENT_MEMBERSHIPS

EXPORTS = EXPORT_KINDS


def export_csv(engine: Engine, name: str, what: str, out: Path) -> int:
    """Stream one of the set's tables to a CSV file in flat memory; returns the bytes written."""
    record = store.get(engine, name)
    if what not in EXPORTS:
        raise AnalysisError(f"--what must be one of {', '.join(EXPORTS)}, not {what!r}")
    if what != "flow":
        require_built(record)
    queries = {
        "memberships": "SELECT m.contact_id, m.persona_id, p.name AS persona_name, m.confidence, m.build "  # noqa: S608
        "FROM persona_memberships m JOIN personas p ON p.persona_set_id = m.persona_set_id "
        "AND p.build = m.build AND p.persona_id = m.persona_id "
        f"WHERE m.persona_set_id = :id AND {CURRENT_MEMBERSHIPS} ORDER BY m.contact_id",
        "analysis": 'SELECT section, persona_id, trait, role, bucket, "count", share, value, lift '
        "FROM persona_analysis WHERE persona_set_id = :id",
        "history": "SELECT contact_id, persona_id, valid_from, valid_to, build FROM membership_history "
        "WHERE persona_set_id = :id ORDER BY contact_id, valid_from",
    }
    with files.atomic_output(out) as handle:
        if what == "flow":
            handle.write(flow_counts(engine, record.name).to_csv(index=False).encode())
        else:
            stream_csv(engine, queries[what], handle, {"id": record.id})
    return out.stat().st_size
