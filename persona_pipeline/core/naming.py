"""Readable, unique persona names built from what defines each persona, from the catalog's own words.

Words come only from the catalog's labels (behaviour, home, life stage), never from gender, ethnicity or
faces: a name should describe what the data shows, not a stereotype.
"""

from __future__ import annotations

from persona_pipeline.core.domain import TraitEffect
from persona_pipeline.core.profiles import DEFINING_MIN_EFFECT
from persona_pipeline.core.traits import Trait, TraitCatalog, TraitKind

NAME_MIN_EFFECT = 0.35
# a yes/no trait or a category level names a persona only when two in three of it hold it: 'Work-Limited'
# for a persona 36% work-limited misleads however far above the cohort, and so did 'Men' for one 58% men (a
# new user's reading, stop 31); a name already given keeps it down to 60%, so it does not flicker at the line
NAME_MIN_SHARE, KEEP_MIN_SHARE = 2 / 3, 0.6
MAX_ADJECTIVES = 2
PLAIN_HIGH, PLAIN_LOW, PLAIN_NO, PLAIN_JOIN = "High", "Low", "No", " & "
TYPICAL = "Typical of the Cohort"  # the name of a persona no trait sets apart


def _held_by_most(effect: TraitEffect, trait: Trait, min_share: float) -> bool:
    """Whether the persona's side of a yes/no trait or category level is known to be held by at least
    min_share of it (persona_value is the share of those with a value that has the level; `known`, the share
    with a value); a number's side is when its value is known for min_share."""
    if trait.numeric_like:
        return effect.known >= min_share
    share = float(effect.persona_value)
    held = 1.0 - share if trait.kind is TraitKind.BOOLEAN and effect.effect < 0 else share
    return held * effect.known >= min_share


def _label(
    effect: TraitEffect,
    catalog: TraitCatalog,
    min_effect: float = NAME_MIN_EFFECT,
    min_share: float = NAME_MIN_SHARE,
) -> tuple[str, bool] | None:
    """The word for this effect and whether it is a noun, or None when the catalog has no word for it."""
    if effect.trait not in catalog or abs(effect.effect) < min_effect or not effect.salient:
        return None
    trait = catalog[effect.trait]
    if trait.sensitive:  # a protected trait never names a persona
        return None
    if not _held_by_most(effect, trait, min_share):
        return None
    level = str(effect.level)
    if trait.kind is TraitKind.BOOLEAN and effect.effect < 0:
        level = "false"  # a yes/no trait the persona lacks: the catalog's word for 'false', if it has one
    elif not trait.numeric_like and effect.effect < 0:
        return None  # "not suburban" makes a poor name
    word = trait.labels.get(level)
    return (word, trait.noun) if word else None


def _plain(
    effect: TraitEffect,
    catalog: TraitCatalog,
    min_effect: float = NAME_MIN_EFFECT,
    min_share: float = NAME_MIN_SHARE,
) -> str | None:
    """Words for a salient trait the catalog gives no label: 'High Balance', 'Student', 'No Voice Mail Plan',
    'Contract Two Year'."""
    if effect.trait not in catalog or not effect.salient or abs(effect.effect) < min_effect:
        return None
    trait = catalog[effect.trait]
    if trait.sensitive:
        return None
    if not _held_by_most(effect, trait, min_share):
        return None
    title = trait.title.title()
    if trait.numeric_like:
        return f"{PLAIN_HIGH if effect.effect > 0 else PLAIN_LOW} {title}"
    if trait.kind is TraitKind.BOOLEAN:
        return title if effect.effect > 0 else f"{PLAIN_NO} {title}"
    if effect.effect < 0:
        return None
    return f"{title} {str(effect.level).replace('_', ' ').title()}"


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
    return PLAIN_JOIN.join(plain) or TYPICAL


def name_supported(name: str, effects: list[TraitEffect], catalog: TraitCatalog) -> bool:
    """Whether a name generated for an earlier build is still true of this persona: each of its words is
    the label or plain words of a trait the persona is still salient on (at the defining threshold, a little
    below the naming one, so a name does not flicker on a trait near the line), apart from a number or
    '(new)'. A name built on a trait that left the catalog, on a label since changed, or on a trait the
    persona no longer stands out on, is not."""
    if name == TYPICAL:
        return persona_name(effects, catalog) == TYPICAL
    words: set[str] = set()
    for effect in effects:
        found = _label(effect, catalog, DEFINING_MIN_EFFECT, KEEP_MIN_SHARE)
        if found is not None:
            words.add(found[0])
        plain = _plain(effect, catalog, DEFINING_MIN_EFFECT, KEEP_MIN_SHARE)
        if plain is not None:
            words.add(plain)
    rest = name.replace("(new)", " ")
    for word in sorted(words, key=len, reverse=True):
        rest = rest.replace(word, " ")
    return all(w.isdigit() or w == PLAIN_JOIN.strip() for w in rest.split())


def named_effects(name: str, effects: list[TraitEffect], catalog: TraitCatalog) -> list[TraitEffect]:
    """The effects whose words make up `name`, one per trait, strongest first: the level the name says
    ('Homeowning': home ownership owner), not the trait's strongest effect (renter, on the low side)."""
    found: dict[str, TraitEffect] = {}
    for effect in effects:
        words = [w for w in (_label(effect, catalog, DEFINING_MIN_EFFECT), _plain(effect, catalog, 0.0)) if w]
        texts = [w[0] if isinstance(w, tuple) else w for w in words]
        if any(text and text in name for text in texts) and effect.trait not in found:
            found[effect.trait] = effect
    return list(found.values())


def name_words(name: str) -> frozenset[str]:
    """A name's words, whatever their order or case: 'Senior Long-Married' and 'Long-Married Senior' are one
    name to a reader (a trial found both in one set); plain names by their phrases, since 'High Age & Low
    Kids' and 'Low Age & High Kids' are not."""
    if PLAIN_JOIN in name:
        return frozenset(part.strip().lower() for part in name.split(PLAIN_JOIN))
    return frozenset(name.lower().split())


def free_name(effects: list[TraitEffect], catalog: TraitCatalog, taken: set[str], first_skip: int = 0) -> str:
    """The persona's name from its strongest defining traits whose words no name in `taken` has, trying the
    next defining traits (from `first_skip`), then a number after the last name tried."""
    used = {name_words(name) for name in taken}
    for skip in range(first_skip, 4):
        candidate = persona_name(effects, catalog, skip)
        if name_words(candidate) not in used:
            return candidate
    number = 2
    while f"{candidate} {number}" in taken:
        number += 1
    return f"{candidate} {number}"


def unique_names(effects_by_persona: dict[int, list[TraitEffect]], catalog: TraitCatalog) -> dict[int, str]:
    """Names for every persona, made unique by trying the next defining trait, then a number."""
    names: dict[int, str] = {}
    for pid in sorted(effects_by_persona):
        names[pid] = free_name(effects_by_persona[pid], catalog, set(names.values()))
    return names
