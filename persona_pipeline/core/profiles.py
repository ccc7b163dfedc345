"""What sets each persona apart: trait effects against the cohort, and short rules that explain membership."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.tree import DecisionTreeClassifier

from persona_pipeline.core.domain import Rule, TraitEffect
from persona_pipeline.core.features import as_numbers, category_codes, date_reference
from persona_pipeline.core.traits import Trait, TraitKind

DEFINING_MIN_EFFECT = 0.3  # standardized difference below which a trait does not define a persona
RULE_SAMPLE = 30_000


def _fmt(value: float) -> str:
    value = 0.0 if abs(value) < 0.005 else value
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}".rstrip("0").rstrip(".")


def _trait_numbers(trait: Trait, column: pd.Series) -> tuple[np.ndarray, str]:
    """(n,) float64 of a numeric-like trait, and its date reference ('' for other kinds)."""
    reference = date_reference(trait, column) if trait.kind is TraitKind.DATE else ""
    return as_numbers(trait.kind, column, trait.levels, reference), reference


def value_text(trait: Trait, value: float, reference: str = "") -> str:
    """A numeric-like value in the trait's own words: '1,978', '412 days before 2026-11-30', 'bachelor'."""
    if trait.kind is TraitKind.ORDINAL:
        return trait.levels[int(np.clip(round(value), 0, len(trait.levels) - 1))]
    if trait.kind is TraitKind.DATE:
        return f"{_fmt(value)} days before {reference}"
    unit = trait.unit or (trait.description if trait.description and len(trait.description) < 24 else "")
    return f"{_fmt(value)} {unit}".rstrip()


def _shares_by_persona(
    codes: np.ndarray, inverse: np.ndarray, k: int, levels: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-persona and cohort share of each level among rows where the trait is known."""
    known = codes >= 0
    counts = np.bincount(inverse[known] * levels + codes[known], minlength=k * levels).reshape(k, levels)
    per_persona = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    cohort = counts.sum(axis=0) / max(int(counts.sum()), 1)
    return per_persona, cohort


def trait_effects(
    frame: pd.DataFrame, persona: np.ndarray, traits: list[Trait]
) -> dict[int, list[TraitEffect]]:
    """Every trait's effect for every persona, strongest first."""
    ids, inverse = np.unique(persona, return_inverse=True)
    k = len(ids)
    out: dict[int, list[TraitEffect]] = {int(i): [] for i in ids}
    for trait in traits:
        column = frame[trait.name]
        if trait.numeric_like:
            values, reference = _trait_numbers(trait, column)
            known = ~np.isnan(values)
            std = float(np.std(values[known], ddof=1)) if known.sum() > 1 else 1.0
            std = std or 1.0
            mean_c = float(values[known].mean()) if known.any() else 0.0
            median_c = float(np.median(values[known])) if known.any() else 0.0
            sums = np.bincount(inverse[known], weights=values[known], minlength=k)
            sizes = np.bincount(inverse[known], minlength=k)
            medians = pd.Series(values[known]).groupby(inverse[known]).median()
            for j, pid in enumerate(ids):
                mean_p = sums[j] / sizes[j] if sizes[j] else mean_c
                median_p = float(medians.get(j, median_c))
                effect = (mean_p - mean_c) / std
                text = (
                    f"{trait.title}: median {value_text(trait, median_p, reference)} vs "
                    f"{value_text(trait, median_c, reference)} in the cohort"
                )
                out[int(pid)].append(
                    TraitEffect(
                        trait.name, "high" if effect >= 0 else "low", effect, median_p, median_c, text
                    )
                )
            continue
        if trait.kind is TraitKind.BOOLEAN:
            flags = column.astype("boolean")
            codes = np.where(
                flags.isna().to_numpy(), -1, np.where(flags.fillna(False).to_numpy(dtype=bool), 1, 0)
            )
            per_persona, cohort = _shares_by_persona(codes, inverse, k, 2)
            levels = [("true", 1)]
        else:
            codes = category_codes(column, trait.levels).astype(np.int64)
            per_persona, cohort = _shares_by_persona(codes, inverse, k, len(trait.levels))
            levels = [(level, i) for i, level in enumerate(trait.levels)]
        for level, index in levels:
            share_c = float(cohort[index])
            spread = float(np.sqrt(share_c * (1 - share_c))) or 1.0
            label = trait.title if trait.kind is TraitKind.BOOLEAN else f"{trait.title} {level}"
            for j, pid in enumerate(ids):
                share_p = float(per_persona[j, index])
                text = f"{label}: {share_p:.0%} vs {share_c:.0%} in the cohort"
                out[int(pid)].append(
                    TraitEffect(trait.name, level, (share_p - share_c) / spread, share_p, share_c, text)
                )
    for pid in out:
        out[pid].sort(key=lambda e: -abs(e.effect))
    return out


def defining_traits(effects: list[TraitEffect], limit: int = 5) -> list[TraitEffect]:
    """The strongest differences, one per trait; a category counts only where the persona has more of it."""
    chosen: list[TraitEffect] = []
    seen: set[str] = set()
    for effect in effects:
        if effect.trait in seen or abs(effect.effect) < DEFINING_MIN_EFFECT:
            continue
        if effect.level not in ("high", "low") and effect.effect < 0:
            continue
        chosen.append(effect)
        seen.add(effect.trait)
        if len(chosen) == limit:
            break
    return chosen


def _rule_matrix(
    frame: pd.DataFrame, traits: list[Trait]
) -> tuple[np.ndarray, list[tuple[Trait, str | None]]]:
    """Readable features for trees: raw numbers, 0/1 booleans, one column per category level."""
    columns, names = [], []
    for trait in traits:
        column = frame[trait.name]
        if trait.numeric_like:
            values, _ = _trait_numbers(trait, column)
            known = ~np.isnan(values)
            columns.append(np.where(known, values, np.median(values[known]) if known.any() else np.nan))
            names.append((trait, None))
        elif trait.kind is TraitKind.BOOLEAN:
            columns.append(column.astype("boolean").fillna(False).astype("float64").to_numpy())
            names.append((trait, "true"))
        else:
            text = column.astype(object)
            for level in trait.levels:
                columns.append((text == level).to_numpy(dtype="float64"))
                names.append((trait, level))
    return np.column_stack(columns), names


def _condition(trait: Trait, level: str | None, threshold: float, goes_left: bool) -> str:
    if level is None and trait.kind is TraitKind.ORDINAL:  # ranks split between two levels
        below = trait.levels[int(np.clip(np.floor(threshold), 0, len(trait.levels) - 1))]
        return f"{trait.title} at most {below}" if goes_left else f"{trait.title} above {below}"
    if level is None and trait.kind is TraitKind.DATE:  # days before the reference
        shown = _fmt(threshold)
        return f"{trait.title} within {shown} days" if goes_left else f"{trait.title} over {shown} days back"
    if level is None:
        shown = _fmt(threshold)
        return f"{trait.title} ≤ {shown}" if goes_left else f"{trait.title} > {shown}"
    if level == "true":
        return f"not {trait.title}" if goes_left else trait.title
    return f"{trait.title} is not {level}" if goes_left else f"{trait.title} is {level}"


def membership_rules(
    frame: pd.DataFrame, persona: np.ndarray, traits: list[Trait], seed: int, per_persona: int = 2
) -> dict[int, list[Rule]]:
    """Up to two short rules per persona from a depth-3 one-vs-rest tree, each with precision and coverage."""
    rng = np.random.default_rng(seed)
    index = np.sort(rng.choice(len(frame), RULE_SAMPLE, replace=False)) if len(frame) > RULE_SAMPLE else None
    sample = frame.iloc[index] if index is not None else frame
    labels = persona[index] if index is not None else persona
    x, names = _rule_matrix(sample, traits)
    rules: dict[int, list[Rule]] = {}
    for pid in np.unique(labels):
        target = labels == pid
        tree = DecisionTreeClassifier(max_depth=3, min_samples_leaf=max(20, len(x) // 100), random_state=seed)
        tree.fit(x, target)
        covered = max(int(target.sum()), 1)
        found = [
            Rule(path, hits / size, hits / covered)
            for path, hits, size in _leaf_paths(tree, names)
            if size and hits / size >= 0.5 and path
        ]
        found.sort(key=lambda r: -(r.precision * r.coverage))
        rules[int(pid)] = [
            Rule(_simplify(r.conditions), round(r.precision, 3), round(r.coverage, 3))
            for r in found[:per_persona]
        ]
    return rules


def _leaf_paths(
    tree: DecisionTreeClassifier, names: list[tuple[Trait, str | None]]
) -> list[tuple[list, float, float]]:
    """Every leaf's path of (trait, level, threshold, went_left) steps, with its member hits and size."""
    t = tree.tree_
    out: list[tuple[list, float, float]] = []
    stack: list[tuple[int, list]] = [(0, [])]
    while stack:
        node, path = stack.pop()
        if t.children_left[node] == -1:
            size = float(t.weighted_n_node_samples[node])
            counts = t.value[node][0] * size
            out.append((path, float(counts[1]) if len(counts) > 1 else 0.0, size))
            continue
        trait, level = names[t.feature[node]]
        threshold = float(t.threshold[node])
        stack.append((t.children_right[node], [*path, (trait, level, threshold, False)]))
        stack.append((t.children_left[node], [*path, (trait, level, threshold, True)]))
    return out


def _simplify(path: list) -> list[str]:
    """Readable conditions: the tightest bound per numeric trait, and no 'is not' beside an 'is' of the same trait."""
    bounds: dict[tuple[str, bool], tuple] = {}
    positive = {trait.name for trait, level, _, left in path if level not in (None, "true") and not left}
    kept = []
    for step in path:
        trait, level, threshold, left = step
        if level is None:
            key = (trait.name, left)
            current = bounds.get(key)
            if current is None or (threshold < current[2] if left else threshold > current[2]):
                if current is not None:
                    kept.remove(current)
                bounds[key] = step
                kept.append(step)
        elif level != "true" and left and trait.name in positive:
            continue
        else:
            kept.append(step)
    return [_condition(*step) for step in kept]
