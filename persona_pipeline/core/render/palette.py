"""The colours of every view: personas in cards, charts and avatars; categories in charts; the cohort in grey."""

from __future__ import annotations

from collections.abc import Iterable

# Twelve colours, one per persona a set may have: Paul Tol's colour-blind-safe "muted" scheme and three of
# Okabe and Ito's, all told apart under the common colour-vision deficiencies.
PALETTE = (
    "#332288",
    "#E69F00",
    "#117733",
    "#CC6677",
    "#56B4E9",
    "#882255",
    "#44AA99",
    "#999933",
    "#AA4499",
    "#D55E00",
    "#88CCEE",
    "#DDCC77",
)
COHORT_COLOUR = "#8a8f98"
OTHER_COLOUR = "#c4c8cf"  # the "other" slice of a chart with more categories than colours


def colour(index: int) -> str:
    """The colour of the index-th bar of a chart."""
    return PALETTE[index % len(PALETTE)]


def persona_colours(persona_ids: Iterable[int]) -> dict[int, str]:
    """Each persona's colour, the same in cards, charts and its avatar, and distinct within the set.

    A persona keeps its colour across rebuilds (its id picks it), unless another persona of the set already
    holds that colour: then it takes the next free one, in id order, so the result never depends on order.
    """
    taken: dict[int, str] = {}
    used: set[str] = set()
    for pid in sorted(set(persona_ids)):
        start = (pid - 1) % len(PALETTE)
        for step in range(len(PALETTE)):
            candidate = PALETTE[(start + step) % len(PALETTE)]
            if candidate not in used:
                break
        else:  # more personas than colours: the set's limit is the palette's size, so this is a repeat
            candidate = PALETTE[start]
        taken[pid] = candidate
        used.add(candidate)
    return taken


def category_colours(categories: list[str]) -> dict[str, str]:
    """A distinct colour per category, in the given order (largest first); past the palette, one grey 'other'."""
    return {c: PALETTE[i] if i < len(PALETTE) else OTHER_COLOUR for i, c in enumerate(categories)}
