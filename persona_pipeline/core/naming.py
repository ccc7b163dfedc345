"""Readable, unique persona names built from what defines each persona, from the catalog's own words.

Words come only from the catalog's labels (behaviour, home, life stage), never from gender, ethnicity or
faces: a name should describe what the data shows, not a stereotype.
"""

from __future__ import annotations

from persona_pipeline.core.domain import TraitEffect
from persona_pipeline.core.traits import TraitCatalog

NAME_MIN_EFFECT = 0.35
MAX_ADJECTIVES = 2
PLAIN_HIGH, PLAIN_LOW, PLAIN_JOIN = "High", "Low", " & "


def _label(effect: TraitEffect, catalog: TraitCatalog) -> tuple[str, bool] | None:
    """The word for this effect and whether it is a noun, or None when the catalog has no word for it."""
    if effect.trait not in catalog or abs(effect.effect) < NAME_MIN_EFFECT or not effect.salient:
        return None
    trait = catalog[effect.trait]
    if not trait.numeric_like and effect.effect < 0:
        return None  # "not dog-loving" makes a poor name
    word = trait.labels.get(str(effect.level))
    return (word, trait.noun) if word else None


def _plain(effect: TraitEffect, catalog: TraitCatalog) -> str | None:
    """Words for a salient trait the catalog gives no label: 'High Balance', 'Student', 'Contract Two Year'."""
    if effect.trait not in catalog or not effect.salient or abs(effect.effect) < NAME_MIN_EFFECT:
        return None
    trait = catalog[effect.trait]
    title = trait.title.title()
    if trait.numeric_like:
        return f"{PLAIN_HIGH if effect.effect > 0 else PLAIN_LOW} {title}"
    if effect.effect < 0:
        return None
    return title if effect.level == "true" else f"{title} {str(effect.level).replace('_', ' ').title()}"


def persona_name(effects: list[TraitEffect], catalog: TraitCatalog, skip: int = 0) -> str:
    """Up to two adjectives and a noun from the catalog's labels, strongest first ('Suburban Dog-Loving
    Families'); adjectives alone when no noun applies; plain words from the strongest unlabelled traits when
    no label applies ('High Balance & Student'). No filler: every word says something about the persona."""
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
        if noun and len(adjectives) >= MAX_ADJECTIVES:
            break
    if noun is not None:
        return " ".join([*adjectives[:MAX_ADJECTIVES], noun])
    if adjectives:
        return " ".join(adjectives)
    plain = [w for w in (_plain(e, catalog) for e in effects) if w]
    plain = list(dict.fromkeys(plain))[skip : skip + 2] or plain[:2]
    return PLAIN_JOIN.join(plain) or "Typical of the Cohort"


def name_fits_catalog(name: str, catalog: TraitCatalog) -> bool:
    """Whether a generated name uses only words the catalog still has (its labels, its traits' titles and
    levels, a number, '(new)'): a name built on a trait that left the catalog, or on a label since changed,
    does not."""
    rest = name.replace("(new)", " ").replace(PLAIN_JOIN, " ")
    words = {w for t in catalog.traits for w in t.labels.values()}
    for t in catalog.traits:
        words.add(t.title.title())
        words.update(str(level).replace("_", " ").title() for level in t.levels)
    words.update({PLAIN_HIGH, PLAIN_LOW, "Typical of the Cohort"})
    for word in sorted(words, key=len, reverse=True):
        rest = rest.replace(word, " ")
    return all(w.isdigit() for w in rest.split())


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
