"""Scoring inside the warehouse: a fitted model written as one SQL query, so no contact leaves it.

The query encodes each trait as the build did (core.features: fill, log, standardize, clip; yes/no and
category columns against the cohort's shares), rounds each feature to 32-bit floats as the Python path
holds them, and sums squared differences to each centroid in 64-bit floats trait by trait (a category's sum
is a constant per level): the same operations in the same order as `clustering.exact_distances`, which the
Python path falls back to wherever two centroids are too close to call in 32 bits. So both paths assign every
contact the same persona, ties included (the lowest centroid index wins, as numpy's argmin). A latent-class
model's query keeps missing values NULL and adds each persona's cost terms in `latent_class.costs`'s order
(`cost_expressions`); the lowest cost wins the same way, and the confidence is the posterior.

Pure: level names and other user text become bind parameters, identifiers come quoted by the caller.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from persona_pipeline.core.clustering import block_sums
from persona_pipeline.core.features import CLIP, TraitEncoding
from persona_pipeline.core.latent_class import EXP_FLOOR
from persona_pipeline.core.model import PersonaModel
from persona_pipeline.core.traits import TraitKind

SECONDS_PER_DAY = 86_400.0


def _literal(value: float) -> str:
    """A float written so the warehouse reads back exactly this double (repr round-trips)."""
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"a model holds a non-finite number ({value}); rebuild the persona set")
    return f"CAST({value!r} AS DOUBLE PRECISION)"


def _real(value: float) -> str:
    """A number rounded to 32 bits, as the Python path stores a feature, written exactly."""
    return _literal(float(np.float32(value)))


@dataclass
class _Params:
    """Bind parameters of one query: user text (level names, persona names) never enters its text."""

    prefix: str
    values: dict[str, object] = field(default_factory=dict)

    def bind(self, value: object) -> str:
        name = f"{self.prefix}{len(self.values)}"
        self.values[name] = value
        return f":{name}"


def _number(enc: TraitEncoding, column: str, params: _Params) -> str:
    """The raw number of a numeric-like trait as a double, NULL when missing or unknown."""
    if enc.kind == TraitKind.ORDINAL:
        ranks = " ".join(f"WHEN {params.bind(level)} THEN {i}" for i, level in enumerate(enc.levels))
        return f"CAST(CASE {column} {ranks} ELSE NULL END AS DOUBLE PRECISION)"
    if enc.kind == TraitKind.DATE:
        if not enc.reference:
            return "CAST(NULL AS DOUBLE PRECISION)"
        reference = params.bind(enc.reference)
        return (
            f"(EXTRACT(EPOCH FROM (CAST({reference} AS TIMESTAMP) - CAST({column} AS TIMESTAMP))) "
            f"/ {_literal(SECONDS_PER_DAY)})"
        )
    return f"CAST({column} AS DOUBLE PRECISION)"


def trait_expressions(model: PersonaModel, column: Callable[[str], str], params: _Params) -> list[str]:
    """One SQL expression per trait of the model, in the transform's order: a number-like trait's feature
    as the Python path holds it (rounded to 32 bits, as a double), a category's level index (-1: missing or
    unknown). A latent-class model reads missing numbers as NULL, not filled, and a yes/no trait as its
    level index (0 no, 1 yes, -1 missing), as FeatureTransform.trait_values does."""
    latent = model.latent is not None
    out: list[str] = []
    for enc in model.transform.encodings:
        source = column(enc.name)
        if enc.kind in (TraitKind.NUMERIC, TraitKind.DATE, TraitKind.ORDINAL):
            value = _number(enc, source, params)
            if enc.log:
                # GREATEST skips NULLs (GREATEST(NULL, 0) is 0): a missing value must stay missing
                value = f"CASE WHEN {value} IS NULL THEN NULL ELSE LN(1 + GREATEST({value}, 0)) END"
            filled = value if latent else f"COALESCE({value}, {_literal(enc.fill)})"
            standardized = f"({filled} - {_literal(enc.center)}) / {_literal(enc.scale)}"
            clipped = f"LEAST(GREATEST({standardized}, {_literal(-CLIP)}), {_literal(CLIP)})"
            feature = f"CAST(CAST({clipped} AS REAL) AS DOUBLE PRECISION)"
            # LEAST and GREATEST skip NULLs too: a latent-class model's missing number stays NULL
            out.append(f"CASE WHEN {value} IS NULL THEN NULL ELSE {feature} END" if latent else feature)
        elif enc.kind == TraitKind.BOOLEAN and latent:
            out.append(f"CASE WHEN {source} IS NULL THEN -1 WHEN CAST({source} AS BOOLEAN) THEN 1 ELSE 0 END")
        elif enc.kind == TraitKind.BOOLEAN:
            flag = (
                f"CASE WHEN {source} IS NULL THEN {_literal(enc.fill)} WHEN CAST({source} AS BOOLEAN) "
                f"THEN {_literal(1.0)} ELSE {_literal(0.0)} END"
            )
            out.append(
                f"CAST(CAST(({flag} - {_literal(enc.center)}) / {_literal(enc.scale)} AS REAL) AS DOUBLE PRECISION)"
            )
        else:
            cases = " ".join(f"WHEN {params.bind(level)} THEN {i}" for i, level in enumerate(enc.levels))
            out.append(f"CASE {source} {cases} ELSE -1 END")
    return out


def level_blocks(enc: TraitEncoding) -> np.ndarray:
    """(levels + 1, levels) float32: a category's features for each level, the last row for missing or
    unknown, exactly as FeatureTransform.transform writes them."""
    shares = np.asarray(enc.shares)
    lookup = (np.vstack([np.eye(len(enc.levels)), shares[None, :]]) - shares) / enc.scale
    return lookup.astype(np.float32)


def distance_expressions(model: PersonaModel, traits: list[str]) -> list[str]:
    """Squared distance to each centroid, in 64-bit floats, in the order of clustering.exact_distances: each
    trait's block summed from zero, the blocks added left to right. A category's block depends only on its
    level, so it is a constant per level, computed here with that same arithmetic."""
    centroids = model.centroids.astype(np.float32).astype(np.float64)
    widths = [e.width for e in model.transform.encodings]
    out = []
    for centre in centroids:
        terms, col = [], 0
        for enc, x, width in zip(model.transform.encodings, traits, widths, strict=True):
            part = centre[col : col + width]
            if enc.kind == TraitKind.CATEGORICAL:
                sums = block_sums(level_blocks(enc), part)
                cases = " ".join(f"WHEN {i} THEN {_literal(v)}" for i, v in enumerate(sums[:-1].tolist()))
                terms.append(f"(CASE {x} {cases} ELSE {_literal(float(sums[-1]))} END)")
            else:
                c = _literal(float(part[0]))
                terms.append(f"({x} - {c}) * ({x} - {c})")
            col += width
        out.append(" + ".join(terms) if terms else _literal(0.0))
    return out


def cost_expressions(model: PersonaModel, traits: list[str]) -> list[str]:
    """A latent-class model's cost of each persona, in 64-bit floats, in the order of latent_class.costs:
    the persona's base, then each trait's term left to right (0 where the value is missing)."""
    if model.latent is None:
        raise ValueError("cost_expressions needs a latent-class model; distance_expressions scores k-means")
    zero = _literal(0.0)
    out = []
    for c, base in enumerate(model.latent.base.tolist()):
        terms = [_literal(base)]
        for x, term in zip(traits, model.latent.terms, strict=True):
            if term.numeric:
                mean, half, offset = (
                    _literal(term.mean[c]),
                    _literal(term.half_precision[c]),
                    _literal(term.offset[c]),
                )
                terms.append(
                    f"(CASE WHEN {x} IS NULL THEN {zero} ELSE ({x} - {mean}) * ({x} - {mean}) * {half} + {offset} END)"
                )
            elif term.thresholds is not None:  # a count by its levels: the level between its cuts
                level_costs = term.level_costs[c].tolist()
                cases = " ".join(
                    f"WHEN {x} < {_literal(cut)} THEN {_literal(v)}"
                    for cut, v in zip(term.thresholds.tolist(), level_costs, strict=False)
                )
                terms.append(
                    f"(CASE WHEN {x} IS NULL THEN {zero} {cases} ELSE {_literal(level_costs[-1])} END)"
                )
            else:
                cases = " ".join(
                    f"WHEN {i} THEN {_literal(v)}" for i, v in enumerate(term.level_costs[c].tolist())
                )
                terms.append(f"(CASE {x} {cases} ELSE {zero} END)")
        out.append(" + ".join(terms))
    return out


def nearest_case(k: int) -> str:
    """The index of the nearest centroid, the lowest on ties: branch i wins when d_i is at most every later
    distance (earlier ones already lost, so d_i is the first minimum)."""
    if k == 1:
        return "0"
    branches = " ".join(
        f"WHEN {' AND '.join(f'd{i} <= d{j}' for j in range(i + 1, k))} THEN {i}" for i in range(k - 1)
    )
    return f"CASE {branches} ELSE {k - 1} END"


@dataclass(frozen=True)
class ScoringQuery:
    """A SELECT of carried_0.., persona_id, persona_name, confidence over the rows of a source, and its bind
    parameters."""

    sql: str
    params: dict[str, object]


def scoring_query(
    model: PersonaModel,
    names: dict[int, str],
    source: str,
    column: Callable[[str], str],
    carried: list[str],
    prefix: str = "p",
) -> ScoringQuery:
    """The model as one query over `source` (a FROM item that the caller built, aliased so that
    `column(trait)` names a trait and `carried` are SQL expressions passed through as carried_0, carried_1..).

    Output columns: the carried expressions as carried_0.., persona_id, persona_name, confidence (rounded to
    4 places, as the Python path stores it).
    """
    params = _Params(prefix)
    traits = trait_expressions(model, column, params)
    k = model.k
    carry = ", ".join(f"{expr} AS carried_{i}" for i, expr in enumerate(carried))
    carry_names = ", ".join(f"carried_{i}" for i in range(len(carried)))
    encoded = ", ".join(f"{expr} AS x{i}" for i, expr in enumerate(traits)) or "0 AS x0"
    encoded_names = [f"x{j}" for j in range(len(traits))]
    latent = model.latent is not None
    per_persona = (cost_expressions if latent else distance_expressions)(model, encoded_names)
    distances = ", ".join(f"{expr} AS d{i}" for i, expr in enumerate(per_persona))
    ids = model.persona_ids
    persona = "CASE nearest " + " ".join(f"WHEN {i} THEN {int(pid)}" for i, pid in enumerate(ids)) + " END"
    name = (
        "CASE nearest "
        + " ".join(f"WHEN {i} THEN {params.bind(names.get(int(pid)))}" for i, pid in enumerate(ids))
        + " END"
    )
    if k == 1:
        confidence = _literal(1.0)
    elif latent:  # the chosen persona's posterior: 1 / sum_j exp(cost_nearest - cost_j)
        first = "(CASE nearest " + " ".join(f"WHEN {i} THEN d{i}" for i in range(k)) + " END)"
        floor = _literal(EXP_FLOOR)
        confidence = f"1 / ({' + '.join(f'EXP(GREATEST({first} - d{j}, {floor}))' for j in range(k))})"
    else:
        others = {
            i: f"LEAST({', '.join(f'd{j}' for j in range(k) if j != i)})" if k > 2 else f"d{1 - i}"
            for i in range(k)
        }
        first = "CASE nearest " + " ".join(f"WHEN {i} THEN d{i}" for i in range(k)) + " END"
        second = "CASE nearest " + " ".join(f"WHEN {i} THEN {expr}" for i, expr in others.items()) + " END"
        confidence = f"CASE WHEN {second} > 0 THEN 1 - {first} / {second} ELSE {_literal(1.0)} END"
    # OFFSET 0 keeps each level a separate subquery: pulled up, every reference to a distance would be
    # replaced by its whole expression (k^2 comparisons, each repeating every feature), which the planner
    # then spends minutes on
    sql = (
        f"SELECT {carry_names}, {persona} AS persona_id, {name} AS persona_name, "  # noqa: S608 - values bound
        f"ROUND(CAST({confidence} AS NUMERIC), 4) AS confidence FROM ("
        f"SELECT {carry_names}, {', '.join(f'd{i}' for i in range(k))}, {nearest_case(k)} AS nearest FROM ("
        f"SELECT {carry_names}, {distances} FROM ("
        f"SELECT {carry}, {encoded} FROM {source} OFFSET 0) encoded OFFSET 0) distances OFFSET 0) nearest"
    )
    return ScoringQuery(sql, params.values)
