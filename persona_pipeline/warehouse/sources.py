"""The source tables and the trait catalog stored beside them, replaced together or not at all."""

from __future__ import annotations

import json

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from persona_pipeline.core.traits import TraitCatalog
from persona_pipeline.warehouse.bulk import write_frame
from persona_pipeline.warehouse.engine import quote
from persona_pipeline.warehouse.tables import (
    HIDDEN_TRUTH_TABLE,
    ensure_catalog_tables,
    source_tables,
    trait_catalog,
)


def replace_sources(
    engine: Engine,
    catalog: TraitCatalog,
    contacts: pd.DataFrame,
    trait_history: pd.DataFrame,
    orders: pd.DataFrame,
    truth: pd.DataFrame | None = None,
) -> dict[str, int]:
    """Swap in a whole new customer base in one transaction: a failure leaves the old one untouched."""
    ensure_catalog_tables(engine)
    tables = source_tables(catalog)
    counts: dict[str, int] = {}
    with engine.begin() as conn:
        # PostgreSQL refuses to drop a table that staging views read; the next models run recreates them
        cascade = " CASCADE" if engine.dialect.name == "postgresql" else ""
        for table in tables.values():
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {quote(engine, table.name)}{cascade}"))
        for table in tables.values():
            table.create(conn)
        conn.execute(trait_catalog.delete())
        conn.execute(
            trait_catalog.insert(),
            [
                {"position": i, "name": t.name, "definition": json.dumps(t.to_dict())}
                for i, t in enumerate(catalog.traits)
            ],
        )
        frames = {"contacts": contacts, "trait_history": trait_history, "orders": orders}
        if truth is not None:
            frames[HIDDEN_TRUTH_TABLE] = truth
        for name, frame in frames.items():
            columns = [c.name for c in tables[name].columns]
            counts[name] = write_frame(conn, name, frame[[c for c in columns if c in frame.columns]])
    with engine.connect() as conn:  # fresh statistics make the cohort joins plan well on PostgreSQL
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("ANALYZE"))
            conn.commit()
    return counts
