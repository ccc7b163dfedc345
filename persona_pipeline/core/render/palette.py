"""The colours of every view: personas in cards, charts and avatars; the cohort in grey."""

from __future__ import annotations

import hashlib

PALETTE = ("#2E86AB", "#E07A5F", "#3D9970", "#9B5DE5", "#F2A541", "#0081A7", "#C44536", "#6A994E")
COHORT_COLOUR = "#8a8f98"


def colour(index: int) -> str:
    """The colour of the index-th persona of a set (or bar of a chart)."""
    return PALETTE[index % len(PALETTE)]


def colour_for(key: str) -> str:
    """A colour that depends only on `key`, so the same trait looks the same after a rebuild."""
    return PALETTE[int(hashlib.sha256(key.encode()).hexdigest(), 16) % len(PALETTE)]
