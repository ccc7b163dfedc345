"""Real-time scoring: a persona set's current model loaded once, then one contact at a time.

from persona_pipeline.scoring.realtime import load_scorer
scorer = load_scorer("Customers")
scorer.score({"age": 34, "urbanicity": "suburban", "dog_owner": True})  # Score(persona_id, confidence, name)
"""

from __future__ import annotations

from sqlalchemy.engine import Engine

from persona_pipeline.core.domain import names_by_id
from persona_pipeline.core.model import PersonaModel
from persona_pipeline.core.scoring import Scorer
from persona_pipeline.persona_sets.lifecycle import require_built
from persona_pipeline.warehouse import persona_sets as store
from persona_pipeline.warehouse.engine import get_engine
from persona_pipeline.warehouse.trait_catalog import load_catalog


def load_scorer(name: str, engine: Engine | None = None) -> Scorer:
    """The scorer of a ready persona set's current build, with its persona names."""
    engine = engine or get_engine()
    record = store.get(engine, name)
    require_built(record)
    build = store.current_build(engine, record)
    names = names_by_id(store.read_personas(engine, record.id))
    return Scorer(PersonaModel.from_json(build.model), names, set(load_catalog(engine).names))
