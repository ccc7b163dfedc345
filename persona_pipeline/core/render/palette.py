"""The colours of every view: personas in cards, charts and avatars; the cohort in grey."""

from __future__ import annotations

import hashlib

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


def colour(index: int) -> str:
    """The colour of the index-th persona of a set (or bar of a chart)."""
    return PALETTE[index % len(PALETTE)]


def colour_for(key: str) -> str:
    """A colour that depends only on `key`, so the same trait looks the same after a rebuild."""
    return PALETTE[int(hashlib.sha256(key.encode()).hexdigest(), 16) % len(PALETTE)]
