"""Names come from the catalog's words, are unique, and user text never becomes markup."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from persona_pipeline.core.avatars import avatar_svg, glyph
from persona_pipeline.core.domain import Persona, TraitEffect
from persona_pipeline.core.naming import TYPICAL, name_supported, named_effects, persona_name, unique_names
from persona_pipeline.core.personas import describe_personas
from persona_pipeline.core.render.markdown import escape as markdown_escape
from persona_pipeline.core.render.markdown import personas_markdown
from persona_pipeline.core.render.palette import PALETTE, persona_colours
from persona_pipeline.core.synthetic import BUILTIN_CATALOG
from persona_pipeline.core.traits import Trait, TraitCatalog, TraitKind

FIXTURES = Path(__file__).parents[1] / "fixtures"
GLYPH_DOG = '<ellipse cx="12" cy="16.5" rx="5" ry="4.5"/>'


def _effect(
    trait: str, level: str, effect: float, salient: bool = True, share: float | None = None
) -> TraitEffect:
    """share: of the persona holding the level (default: most of it when the effect is positive, few else)."""
    held = (0.9 if effect > 0 else 0.1) if share is None else share
    return TraitEffect(trait, level, effect, held, 0.0, f"{trait} {level}", salient)


def test_name_is_adjectives_then_noun() -> None:
    effects = [
        _effect("urbanicity", "suburban", 1.2),
        _effect("dog_owner", "true", 0.9),
        _effect("children", "high", 0.8),
    ]
    assert persona_name(effects, BUILTIN_CATALOG) == "Suburban Dog-Loving Parents"
    # no noun applies: adjectives alone, no filler noun ("... People")
    assert persona_name(effects[:2], BUILTIN_CATALOG) == "Suburban Dog-Loving"
    # a large gap that is not significant does not name anyone
    assert persona_name([_effect("urbanicity", "suburban", 1.2, salient=False)], BUILTIN_CATALOG) == (
        "Typical of the Cohort"
    )
    # a yes/no trait the persona lacks names it when nothing else does, and never with the trait's label
    assert persona_name([_effect("dog_owner", "true", -2.0)], BUILTIN_CATALOG) == "No Dog Owner"
    assert persona_name([_effect("dog_owner", "true", -2.0), *effects[:1]], BUILTIN_CATALOG) == "Suburban"
    # a level held by a minority names nobody, however far above the cohort (36% dog owners, 56% suburban
    # lacking: 'Dog-Loving' and 'No Dog Owner' would both mislead)
    assert persona_name([_effect("dog_owner", "true", 2.0, share=0.36)], BUILTIN_CATALOG) == TYPICAL
    assert persona_name([_effect("dog_owner", "true", -2.0, share=0.56)], BUILTIN_CATALOG) == TYPICAL
    assert persona_name([_effect("urbanicity", "rural", 1.5, share=0.4), effects[1]], BUILTIN_CATALOG) == (
        "Dog-Loving"
    )
    # 'most' is two in three: a persona 58% dog owners is not 'Dog-Loving' (4 in 10 are not); one at 70% is
    assert persona_name([_effect("dog_owner", "true", 2.0, share=0.58)], BUILTIN_CATALOG) == TYPICAL
    assert persona_name([_effect("dog_owner", "true", 2.0, share=0.7)], BUILTIN_CATALOG) == "Dog-Loving"
    # a name already given holds down to 60%, so it does not flicker at the line
    assert name_supported("Dog-Loving", [_effect("dog_owner", "true", 2.0, share=0.62)], BUILTIN_CATALOG)
    assert not name_supported("Dog-Loving", [_effect("dog_owner", "true", 2.0, share=0.55)], BUILTIN_CATALOG)


def test_traits_without_labels_give_plain_words_that_fit_the_catalog() -> None:
    catalog = TraitCatalog(
        tuple(
            replace(t, labels={})
            for t in BUILTIN_CATALOG.traits
            if t.name in ("age", "shopping_style", "travel")
        )
    )
    effects = [_effect("age", "low", -1.1), _effect("shopping_style", "online_first", 0.9)]
    name = persona_name(effects, catalog)
    assert name == "Low Age & Shopping Style Online First"
    assert name_supported(name, effects, catalog)
    # a kept name stops being true when its trait leaves the catalog or the persona no longer stands out on it
    assert not name_supported(name, effects, TraitCatalog((BUILTIN_CATALOG["travel"],)))
    assert not name_supported(name, effects[1:], catalog)
    assert not name_supported(name, [replace(effects[0], salient=False), effects[1]], catalog)
    assert not name_supported(name, [replace(effects[0], effect=1.1, level="high"), effects[1]], catalog)
    # near the naming line a kept name holds (no flicker), below the defining line it goes
    assert name_supported(name, [replace(effects[0], effect=-0.32), effects[1]], catalog)
    assert not name_supported(name, [replace(effects[0], effect=-0.2), effects[1]], catalog)
    assert name_supported("Typical of the Cohort", [], catalog)
    assert not name_supported("Typical of the Cohort", effects, catalog)


def test_names_are_unique_within_a_set() -> None:
    same = [
        _effect("urbanicity", "urban", 1.0),
        _effect("gaming", "true", 0.8),
        _effect("travel", "true", 0.6),
    ]
    names = unique_names({1: same, 2: same, 3: same, 4: same, 5: same}, BUILTIN_CATALOG)
    assert len(set(names.values())) == 5
    # the same words in another order are the same name to a reader ('Long-Married Senior', 'Senior
    # Long-Married' in one set, from a trial)
    first = [_effect("urbanicity", "urban", 1.2), _effect("gaming", "true", 0.9)]
    second = [
        _effect("gaming", "true", 1.2),
        _effect("urbanicity", "urban", 0.9),
        _effect("travel", "true", 0.6),
    ]
    assert persona_name(second, BUILTIN_CATALOG).split() == persona_name(first, BUILTIN_CATALOG).split()[::-1]
    names = unique_names({1: first, 2: second}, BUILTIN_CATALOG)
    assert set(names[1].lower().split()) != set(names[2].lower().split()), names
    plain = TraitCatalog(
        tuple(replace(t, labels={}) for t in BUILTIN_CATALOG.traits if t.name in ("age", "children"))
    )
    young = [_effect("age", "low", -1.2), _effect("children", "high", 1.0)]
    old = [_effect("age", "high", 1.2), _effect("children", "low", -1.0)]
    assert unique_names({1: young, 2: old}, plain) == {
        1: "Low Age & High Children",
        2: "High Age & Low Children",
    }


def test_avatar_is_valid_svg_and_escapes_the_name() -> None:
    hostile = "<script>alert(1)</script>"
    svg = avatar_svg(hostile, [_effect("dog_owner", "true", 1.0), _effect("travel", "true", 0.5)], "#332288")
    root = ET.fromstring(svg)  # well-formed
    assert root.tag.endswith("svg") and "<script>" not in svg
    assert root.find("{http://www.w3.org/2000/svg}title").text == hostile
    assert avatar_svg("a", [_effect("dog_owner", "true", 1.0)], "#332288") != avatar_svg(
        "a", [_effect("travel", "true", 1.0)], "#332288"
    )
    # no dog for a persona without dogs: a trait it lacks draws nothing
    assert avatar_svg("a", [_effect("dog_owner", "true", -1.0)], "#332288") == avatar_svg("a", [], "#332288")


def test_markdown_shows_hostile_names_as_text() -> None:
    name = "x'; drop table contacts;-- <script>alert(1)</script> [link](http://evil)"
    row = Persona(
        persona_id=1,
        name=name,
        avatar_svg=avatar_svg(name, [], "#332288"),
        population=3,
        share=1.0,
        defining=[],
        rules=[],
    )
    text = personas_markdown(name, [row])
    assert "<script>" not in text and "](http://evil)" not in text
    assert "*rule:* none: no short rule" in text  # a persona without a rule says so, not a silent gap
    assert markdown_escape("<b>") == "&lt;b&gt;"


def test_every_catalog_trait_has_its_own_glyph_and_direction_shows() -> None:
    for catalog in (BUILTIN_CATALOG, *(TraitCatalog.from_yaml(f) for f in FIXTURES.glob("*.traits.yaml"))):
        glyphs = {t.name: glyph(_effect(t.name, "true", 1.0)) for t in catalog.traits}
        assert len(set(glyphs.values())) == len(glyphs), "two traits of one catalog share a glyph"
    young, seasoned = glyph(_effect("age", "low", -1.0)), glyph(_effect("age", "high", 1.0))
    assert young != seasoned  # the same clock, marked down or up
    assert glyph(_effect("urbanicity", "rural", 1.0)) != glyph(_effect("urbanicity", "urban", 1.0))


def test_the_avatar_shows_what_the_name_says_in_the_personas_colour() -> None:
    effects = [
        _effect("children", "high", 1.3),
        _effect("household_size", "high", 1.1),
        _effect("urbanicity", "suburban", 1.0),
        _effect("marital_status", "married", 0.9),
        _effect("dog_owner", "true", 0.8),
    ]
    name = persona_name(effects, BUILTIN_CATALOG)
    assert "Dog-Loving" in name
    named = tuple(e.trait for e in named_effects(name, effects, BUILTIN_CATALOG))
    assert "dog_owner" in named and "household_size" not in named
    svg = avatar_svg(name, effects, "#117733", named)
    assert GLYPH_DOG in svg  # it was fifth among the defining traits, but the name is made of it
    assert 'fill="#117733"' in svg and svg.count("#117733") >= 2  # badge and small glyphs in its colour


@given(st.sets(st.integers(min_value=1, max_value=500), min_size=1, max_size=len(PALETTE)))
def test_persona_colours_are_distinct_within_a_set_and_follow_the_id(ids: set[int]) -> None:
    colours = persona_colours(ids)
    assert set(colours) == ids and len(set(colours.values())) == len(ids)
    assert colours[min(ids)] == PALETTE[(min(ids) - 1) % len(PALETTE)]  # the first keeps its own colour
    assert persona_colours(sorted(ids, reverse=True)) == colours  # not the order they come in


def test_a_persona_that_drew_a_kept_name_takes_its_next_best_name_not_a_suffix() -> None:
    rng = np.random.default_rng(4)
    labels = np.repeat([1, 2, 3], 300)
    frame = pd.DataFrame(
        {
            "age": np.where(labels == 1, rng.normal(25, 3, 900), rng.normal(60, 5, 900)),
            "income": np.where(labels == 2, rng.normal(200, 20, 900), rng.normal(60, 10, 900)),
            "dog_owner": np.where(labels == 1, rng.random(900) < 0.9, rng.random(900) < 0.2),
        }
    )
    traits = [
        Trait("age", TraitKind.NUMERIC, labels={"high": "Seasoned", "low": "Young"}),
        Trait("income", TraitKind.NUMERIC, labels={"high": "Affluent", "low": "Budget"}),
        Trait("dog_owner", TraitKind.BOOLEAN, labels={"true": "Dog-Loving"}),
    ]
    catalog = TraitCatalog(tuple(traits))
    first = {p.persona_id: p.name for p in describe_personas(frame, labels, traits, catalog, 0)}
    # persona 3 was given persona 1's name by a user: it keeps it, and persona 1 yields it
    again = describe_personas(frame, labels, traits, catalog, 0, {3: first[1]}, user_named=frozenset({3}))
    names = {p.persona_id: p.name for p in again}
    assert names[3] == first[1] and names[1] != first[1]
    assert len(set(names.values())) == 3 and not any("(new)" in n for n in names.values())


def test_every_trait_a_name_rests_on_is_shown_with_its_figure() -> None:
    """A trial read 'Medicaid Uninsured Women' beside five defining traits, none of them gender: a labelled trait
    weaker than five unlabelled ones still names the persona, and is then shown too."""
    rng = np.random.default_rng(8)
    labels = np.repeat([1, 2], 400)
    apart = labels == 1
    data = {
        f"score_{i}": np.where(apart, rng.normal(10 + i, 1, 800), rng.normal(0, 1, 800)) for i in range(6)
    }
    data["pet_owner"] = np.where(apart, rng.random(800) < 0.8, rng.random(800) < 0.3)
    frame = pd.DataFrame(data)
    traits = [Trait(f"score_{i}", TraitKind.NUMERIC) for i in range(6)]
    traits.append(Trait("pet_owner", TraitKind.BOOLEAN, labels={"true": "Pet-Loving"}))
    personas = describe_personas(frame, labels, traits, TraitCatalog(tuple(traits)), 0)
    first = next(p for p in personas if p.persona_id == 1)
    assert "Pet-Loving" in first.name
    for persona in personas:
        named = [
            e.trait for e in named_effects(persona.name, [*persona.defining], TraitCatalog(tuple(traits)))
        ]
        shown = {d.trait for d in persona.defining}
        assert set(named) <= shown, (persona.name, shown)
    assert "pet_owner" in {d.trait for d in first.defining} and all(d.salient for d in first.defining)


def test_the_level_a_name_says_is_the_one_shown() -> None:
    """The demo named a persona 'Homeowning' and showed, for home ownership, only 'renter: 13% vs 34%' (the
    trait's other side): the level the name rests on is the one shown with its figure."""
    rng = np.random.default_rng(3)
    labels = np.repeat([1, 2], 400)
    apart = labels == 1
    data = {
        f"score_{i}": np.where(apart, rng.normal(10 + i, 1, 800), rng.normal(0, 1, 800)) for i in range(6)
    }
    data["home"] = np.where(rng.random(800) < np.where(apart, 0.9, 0.3), "owner", "renter")
    traits = [Trait(f"score_{i}", TraitKind.NUMERIC) for i in range(6)]
    traits.append(
        Trait("home", TraitKind.CATEGORICAL, levels=("owner", "renter"), labels={"owner": "Homeowning"})
    )
    personas = describe_personas(pd.DataFrame(data), labels, traits, TraitCatalog(tuple(traits)), 0)
    owning = next(p for p in personas if p.persona_id == 1)
    assert "Homeowning" in owning.name
    assert any(d.trait == "home" and d.level == "owner" for d in owning.defining), owning.defining
