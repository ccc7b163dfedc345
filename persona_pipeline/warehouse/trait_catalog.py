"""The trait catalog stored beside the sources: what each trait is (SQLAlchemy only, no pandas)."""

from __future__ import annotations

import json

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from persona_pipeline.core.traits import Trait, TraitCatalog
from persona_pipeline.errors import CatalogError
from persona_pipeline.warehouse.tables import ensure_catalog_tables, trait_catalog


def load_catalog(engine: Engine) -> TraitCatalog:
    """The catalog of the data now in the warehouse; a clear error when nothing was seeded or loaded yet."""
    ensure_catalog_tables(engine)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(trait_catalog.c.definition).order_by(trait_catalog.c.position)).all()
    if not rows:
        raise CatalogError(
            "the warehouse has no trait catalog yet: run `persona-pipeline seed` or `persona-pipeline load` first"
        )
    return TraitCatalog(tuple(Trait.from_dict(json.loads(r.definition), stored=True) for r in rows))
