"""Readable, unique persona names built from what defines each persona, from the catalog's own words.

Words come only from the catalog's labels (behaviour, home, life stage), never from gender, ethnicity or
faces: a name should describe what the data shows, not a stereotype.
"""

from __future__ import annotations

from persona_pipeline.core.domain import TraitEffect
from persona_pipeline.core.traits import TraitCatalog

FALLBACK_NOUN = "People"
NAME_MIN_EFFECT = 0.35
MAX_ADJECTIVES = 2


def _label(effect: TraitEffect, catalog: TraitCatalog) -> tuple[str, bool] | None:
    """The word for this effect and whether it is a noun, or None when the catalog has no word for it."""
    if effect.trait not in catalog or abs(effect.effect) < NAME_MIN_EFFECT:
        return None
    trait = catalog[effect.trait]
    if not trait.numeric_like and effect.effect < 0:
        return None  # "not dog-loving" makes a poor name
    word = trait.labels.get(str(effect.level))
    return (word, trait.noun) if word else None


def persona_name(effects: list[TraitEffect], catalog: TraitCatalog, skip: int = 0) -> str:
    """Up to two adjectives and a noun, strongest first, e.g. 'Suburban Dog-Loving Families'."""
    adjectives: list[str] = []
    noun: str | None = None
    skipped = 0
    for effect in effects:
        found = _label(effect, catalog)
        if found is None:
            continue
        word, is_noun = found
        if is_noun:
            noun = noun or word
        elif word not in adjectives:
            if skipped < skip and len(adjectives) == MAX_ADJECTIVES - 1:
                skipped += 1
                continue
            if len(adjectives) < MAX_ADJECTIVES:
                adjectives.append(word)
        if noun and len(adjectives) == MAX_ADJECTIVES:
            break
    return " ".join([*adjectives, noun or FALLBACK_NOUN])


def name_fits_catalog(name: str, catalog: TraitCatalog) -> bool:
    """Whether a generated name uses only words the catalog still has (its labels, the fallback noun, a number,
    '(new)'): a name built on a trait that left the catalog, or on a label since changed, does not."""
    rest = name.replace("(new)", " ")
    for word in sorted({w for t in catalog.traits for w in t.labels.values()}, key=len, reverse=True):
        rest = rest.replace(word, " ")
    return all(w == FALLBACK_NOUN or w.isdigit() for w in rest.split())


def unique_names(effects_by_persona: dict[int, list[TraitEffect]], catalog: TraitCatalog) -> dict[int, str]:
    """Names for every persona, made unique by trying the next defining trait, then a number."""
    names: dict[int, str] = {}
    for pid in sorted(effects_by_persona):
        effects = effects_by_persona[pid]
        for skip in range(4):
            candidate = persona_name(effects, catalog, skip)
            if candidate not in names.values():
                break
        number = 2
        base = candidate
        while candidate in names.values():
            candidate, number = f"{base} {number}", number + 1
        names[pid] = candidate
    return names
