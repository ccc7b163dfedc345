"""Did a rebuild keep each contact's persona? Measured against the memberships the previous build stored.

A figure that compares the new model with the old model applied to today's data says nothing about what a
contact was told last time: it was 100% on a rebuild where 4% of contacts moved. So each membership keeps a
fingerprint of the clustering traits it was built from, and the figure splits contacts whose traits did not
change (they should keep their persona) from those whose traits changed (they may rightly move).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from persona_pipeline.core.domain import IdentityFigure
from persona_pipeline.core.features import as_numbers, category_codes, date_values
from persona_pipeline.core.traits import Trait, TraitKind

NO_PERSONA = 0  # a contact the previous build did not have (persona ids start at 1)
_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit constant: combines column hashes so that order matters


def _column_hash(trait: Trait, column: pd.Series) -> np.ndarray:
    """(n,) uint64 of one trait's values, the same whatever type the warehouse handed them back as."""
    if trait.kind is TraitKind.DATE:
        days = date_values(column).to_numpy(dtype="datetime64[D]").astype("int64")
        return pd.util.hash_array(days)
    if trait.kind in (TraitKind.CATEGORICAL, TraitKind.ORDINAL):
        levels = list(trait.levels) or sorted(column.dropna().astype(str).unique().tolist())
        codes = category_codes(column, levels)
        # each level's text hashed once (code -1, missing, takes the appended ""): stable if levels are added
        return pd.util.hash_array(np.asarray([*levels, ""], dtype=object))[codes]
    if trait.kind is TraitKind.BOOLEAN:
        values = column.astype("boolean").to_numpy(dtype="float64", na_value=np.nan)
    else:
        values = as_numbers(TraitKind.NUMERIC, column)
    return pd.util.hash_array(np.where(np.isnan(values), np.inf, values))  # every NaN hashes alike


def fingerprints(frame: pd.DataFrame, traits: list[Trait]) -> np.ndarray:
    """(n,) int64: one hash per row of the traits it was clustered on; equal rows have equal fingerprints."""
    combined = np.zeros(len(frame), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for trait in sorted(traits, key=lambda t: t.name):
            combined = combined * _MIX + _column_hash(trait, frame[trait.name])
    return combined.view(np.int64)


class TraitState:
    """Per contact of a rebuild, int8: where its clustering traits stand against the previous build."""

    NEW = 0  # not in the previous build
    UNCHANGED = 1
    CHANGED = 2
    UNKNOWN = 3  # the previous build stored no fingerprint (built before fingerprints were kept)


def trait_states(
    previous_ids: np.ndarray,
    previous_fingerprints: np.ndarray,
    fingerprinted: np.ndarray,
    current_fingerprints: np.ndarray,
) -> np.ndarray:
    """(n,) int8 TraitState per contact. previous_ids: (n,) the persona each had, NO_PERSONA when it was not
    in the previous build; previous_fingerprints: (n,) int64 stored then; fingerprinted: (n,) bool, where one was."""
    state = np.full(len(previous_ids), TraitState.NEW, dtype=np.int8)
    present = previous_ids != NO_PERSONA
    state[present & ~fingerprinted] = TraitState.UNKNOWN
    known = present & fingerprinted
    state[known] = np.where(
        previous_fingerprints[known] == current_fingerprints[known], TraitState.UNCHANGED, TraitState.CHANGED
    )
    return state


def identity_figure(
    previous_ids: np.ndarray,
    states: np.ndarray,
    new_ids: np.ndarray,
    renamed: dict[int, str],
    left: int,
    traits: tuple[list[str], list[str]] = ([], []),
) -> IdentityFigure:
    """The figure for one rebuild; arrays (n,) over this build's contacts (see trait_states).

    renamed: persona id -> 'old -> new' for personas whose name differs between the two builds: keeping the id
    but not the name is a move for the people who read it (said beside the figure, with the id-only share).
    traits: the clustering traits of the previous build and of this one.
    """
    before, after = traits
    same_id = (previous_ids != NO_PERSONA) & (new_ids == previous_ids)
    kept = same_id & ~np.isin(new_ids, sorted(renamed))

    def count(state: int) -> tuple[int, int]:
        of_state = states == state
        return int(of_state.sum()), int((kept & of_state).sum())

    unchanged, unchanged_kept = count(TraitState.UNCHANGED)
    changed, changed_kept = count(TraitState.CHANGED)
    unknown, unknown_kept = count(TraitState.UNKNOWN)
    return IdentityFigure(
        unchanged=unchanged,
        unchanged_kept=unchanged_kept,
        changed=changed,
        changed_kept=changed_kept,
        unknown=unknown,
        unknown_kept=unknown_kept,
        joined=int((states == TraitState.NEW).sum()),
        left=int(left),
        unchanged_same_id=int((same_id & (states == TraitState.UNCHANGED)).sum()),
        renamed=tuple(renamed[pid] for pid in sorted(renamed)),
        traits_gone=tuple(t for t in before if t not in after),
        traits_added=tuple(t for t in after if t not in before),
    )
