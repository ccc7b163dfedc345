"""Real-time scoring: a persona set's current model loaded once, then one contact at a time.

from persona_pipeline.scoring.realtime import load_scorer
scorer = load_scorer("Customers")
scorer.score({"age": 34, "urbanicity": "suburban", "dog_owner": True})  # Score(persona_id, confidence, name)
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy.engine import Engine

from persona_pipeline.core.domain import names_by_id
from persona_pipeline.core.model import PersonaModel
from persona_pipeline.core.scoring import Scorer
from persona_pipeline.core.traits import TraitKind
from persona_pipeline.errors import ScoringError
from persona_pipeline.persona_sets.lifecycle import require_built
from persona_pipeline.warehouse import persona_sets as store
from persona_pipeline.warehouse.engine import get_engine
from persona_pipeline.warehouse.scores import example_external_id, internal_id_holder, read_contact
from persona_pipeline.warehouse.trait_catalog import load_catalog


def load_scorer(name: str, engine: Engine | None = None) -> Scorer:
    """The scorer of a ready persona set's current build, with its persona names."""
    engine = engine or get_engine()
    record = store.get(engine, name)
    require_built(record)
    build = store.current_build(engine, record)
    names = names_by_id(store.read_personas(engine, record.id))
    catalog = load_catalog(engine)
    normalized = {t.name for t in catalog.traits if t.normalize}
    bounds = {t.name: (t.minimum, t.maximum) for t in catalog.traits if t.kind is TraitKind.NUMERIC}
    return Scorer(PersonaModel.from_json(build.model), names, set(catalog.names), normalized, bounds)


def score_stored_contact(name: str, key: str, engine: Engine | None = None) -> dict[str, Any]:
    """Score a contact already in the warehouse, found by its file's key (text or integer): its stored traits."""
    engine = engine or get_engine()
    row = read_contact(engine, key)
    if row is None:
        example = example_external_id(engine)
        kind = f"; the contacts were loaded with text ids such as {example!r}" if example is not None else ""
        internal = internal_id_holder(engine, key) if example is not None else None
        if internal is not None:  # a contact_id from an export or a score: name the key to pass instead
            kind += f" (contact_id {key.strip()} is the contact loaded as {internal!r}: pass --contact {internal})"
        raise ScoringError(
            f"no stored contact has the id {key!r}{kind}; `persona-pipeline load` adds contacts"
        )
    scorer = load_scorer(name, engine)
    catalog = load_catalog(engine)
    traits = {}
    for trait in catalog.traits:
        value = row.get(trait.name)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        traits[trait.name] = value.isoformat() if hasattr(value, "isoformat") else value
    result = scorer.score(traits).to_dict()
    return {"contact_id": row["contact_id"], "external_id": row.get("external_id"), **result}
