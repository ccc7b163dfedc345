"""Explore: the persona sets a team chose to show, gathered from the warehouse and compared side by side."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from persona_pipeline import files
from persona_pipeline.config import geography_trait as configured_geography_trait
from persona_pipeline.config import reports_dir
from persona_pipeline.core.render.explore import ExploreSet, geography
from persona_pipeline.core.render.explore import render as render_explore
from persona_pipeline.core.render.explore import sizes as explore_sizes
from persona_pipeline.core.traits import TraitKind
from persona_pipeline.warehouse import persona_sets as store
from persona_pipeline.warehouse.engine import quote
from persona_pipeline.warehouse.memberships import CURRENT_MEMBERSHIPS
from persona_pipeline.warehouse.trait_catalog import load_catalog

__all__ = ["explore_sizes", "explore_sets", "write_explore", "explore_fingerprint", "default_explore_path"]


def geography_trait(engine: Engine) -> str | None:
    """The categorical trait Explore maps personas over (PERSONA_GEOGRAPHY_TRAIT, default state), if catalogued."""
    name = configured_geography_trait()
    catalog = load_catalog(engine)
    return name if name in catalog and catalog[name].kind == TraitKind.CATEGORICAL else None


def explore_sets(engine: Engine) -> list[ExploreSet]:
    """The built persona sets shown in Explore, oldest first: a set being rebuilt, or whose rebuild failed,
    keeps showing its current build rather than vanishing from the comparison."""
    return [
        ExploreSet(r.id, r.name, r.cohort, r.current_build, r.built_at, store.read_personas(engine, r.id))
        for r in store.list_all(engine)
        if r.show_in_explore and r.current_build is not None
    ]


def explore_geography(engine: Engine, sets: list[ExploreSet], trait: str) -> pd.DataFrame:
    """Members per persona per region for the shown sets, counted in the warehouse."""
    region = quote(engine, trait)
    statement = sa.text(
        f"SELECT m.persona_set_id, m.persona_id, c.{region} AS region, COUNT(*) AS members "  # noqa: S608 - quoted
        "FROM persona_memberships m JOIN contacts c ON c.contact_id = m.contact_id "
        f"WHERE m.persona_set_id IN :ids AND {CURRENT_MEMBERSHIPS} GROUP BY m.persona_set_id, m.persona_id, c.{region}"
    ).bindparams(sa.bindparam("ids", expanding=True))
    with engine.connect() as conn:
        counts = pd.DataFrame(
            conn.execute(statement, {"ids": [s.id for s in sets]}).all(),
            columns=["persona_set_id", "persona_id", "region", "members"],
        )
    counts["persona_set"] = counts["persona_set_id"].map({s.id: s.name for s in sets})
    return geography(counts.drop(columns="persona_set_id"))


def explore_fingerprint(engine: Engine) -> str:
    """Changes exactly when the Explore page would: which sets are shown, their builds and persona names."""
    shown = [(s.name, s.build, [(p.persona_id, p.name) for p in s.personas]) for s in explore_sets(engine)]
    return hashlib.sha256(json.dumps(shown).encode()).hexdigest()[:16]


def default_explore_path() -> Path:
    return reports_dir() / "explore.html"


def write_explore(engine: Engine, out: str | Path | None = None) -> tuple[Path, pd.DataFrame]:
    """Write the Explore page; returns its path and the side-by-side sizes table."""
    sets = explore_sets(engine)
    trait = geography_trait(engine)
    geo = explore_geography(engine, sets, trait) if sets and trait else None
    path = Path(out) if out else default_explore_path()
    files.write_text(path, render_explore(sets, geo, trait))
    return path, explore_sizes(sets)
