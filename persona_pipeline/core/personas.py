"""Personas from a fitted build: population, defining traits, rules, name and avatar for each."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from persona_pipeline.core.avatars import avatar_svg
from persona_pipeline.core.domain import Persona
from persona_pipeline.core.interpretation import interpret
from persona_pipeline.core.naming import free_name, name_supported, name_words, named_effects, unique_names
from persona_pipeline.core.profiles import defining_traits, membership_rules, trait_effects
from persona_pipeline.core.render.palette import persona_colours
from persona_pipeline.core.traits import Trait, TraitCatalog


def describe_personas(
    frame: pd.DataFrame,
    persona_ids: np.ndarray,
    traits: list[Trait],
    catalog: TraitCatalog,
    seed: int,
    kept_names: dict[int, str] | None = None,
    user_named: frozenset[int] = frozenset(),
) -> list[Persona]:
    """One Persona per id; ids that existed in the previous build keep their name (identity survives rebuilds)
    while it is still true of the persona (naming.name_supported); a name a user gave is always kept."""
    sensitive = {t.name for t in traits if t.sensitive}
    effects = {
        pid: [replace(e, sensitive=True) if e.trait in sensitive else e for e in found]
        for pid, found in trait_effects(frame, persona_ids, traits).items()
    }
    names = unique_names(effects, catalog)
    # beside a user's name, the one its traits give it now: when the persona's meaning moves, this does
    given = kept_names or {}
    data_names = {pid: names[pid] for pid in user_named if pid in names and names[pid] != given.get(pid)}
    for pid, name in (kept_names or {}).items():
        if pid not in user_named and not name_supported(name, effects.get(pid, []), catalog):
            continue  # its words no longer describe it (or left the catalog): the new name stands
        if pid in names:
            clash = [
                other for other, n in names.items() if name_words(n) == name_words(name) and other != pid
            ]
            names[pid] = name
            for other in clash:  # a new persona that drew a kept name yields it for its next-best name
                taken = {n for owner, n in names.items() if owner != other}
                names[other] = free_name(effects.get(other, []), catalog, taken, first_skip=1)
    # who is in a persona, said without a sensitive trait: a rule is a targeting recipe
    described_by = [t for t in traits if not t.sensitive]
    rules = membership_rules(frame, persona_ids, described_by, seed) if described_by else {}
    counts = pd.Series(persona_ids).value_counts()
    total = len(persona_ids)
    colours = persona_colours(effects)
    out = []
    for pid in sorted(effects):
        defining = defining_traits(effects[pid])
        named_by = named_effects(names[pid], effects[pid], catalog)
        named = tuple(e.trait for e in named_by)
        # the level a name rests on is always shown with its figure ('Women' with 'gender female: 80% vs 51%',
        # 'Homeowning' with 'home ownership owner', not only 'renter: 13%'), even past the five strongest
        shown = {(d.trait, d.level) for d in defining}
        defining += [e for e in named_by if e.salient and (e.trait, e.level) not in shown]
        persona = Persona(
            persona_id=pid,
            name=names[pid],
            population=int(counts.get(pid, 0)),
            share=float(counts.get(pid, 0)) / total if total else 0.0,
            defining=defining,
            rules=rules.get(pid, []),
            avatar_svg=avatar_svg(names[pid], defining, colours[pid], named),
            named_by_user=pid in user_named and names[pid] == (kept_names or {}).get(pid),
            data_name=data_names.get(pid, ""),
        )
        out.append(replace(persona, interpretation=interpret(persona)))  # purchases join in the Analysis
    return out
