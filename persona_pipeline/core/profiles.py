"""What sets each persona apart: trait effects against the cohort, and short rules that explain membership."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np
import pandas as pd
from scipy.stats import norm
from sklearn.tree import DecisionTreeClassifier

from persona_pipeline.core.domain import Rule, TraitEffect
from persona_pipeline.core.features import as_numbers, category_codes, date_reference, date_values
from persona_pipeline.core.parallel import in_parallel
from persona_pipeline.core.traits import Trait, TraitKind, is_calendar_year

EPOCH = pd.Timestamp("1970-01-01")  # rules split dates as days since this day
DEFINING_MIN_EFFECT = 0.3  # standardized difference below which a trait does not define a persona
SIGNIFICANCE = 0.01  # family-wise: a salient difference is one chance in 100 over all tests of a build
# a trait known for under half a persona says too little of it to define or name it; under 80% its text says
# how much is known
SALIENT_MIN_KNOWN, KNOWN_SAID = 0.5, 0.8
OR_UNKNOWN = " (or unknown)"  # a rule's condition that also takes contacts with no value for the trait
RULE_SAMPLE = 30_000
SINGULAR = {"people": "person", "children": "child", "men": "man", "women": "woman"}


def _fmt(value: float, integral: bool = False, separators: bool = True, decimals: int | None = None) -> str:
    """A number as people write it: '1,885', '42', '2.4', '0.35'; no separators for calendar years.
    `decimals` fixes the places (two figures compared are written alike: '2.90 vs 4.69', not '2.9 vs 4.69')."""
    value = 0.0 if abs(value) < 0.005 else value
    if decimals is None:
        decimals = _decimals(value, integral)
    return f"{value:,.{decimals}f}" if separators else f"{value:.{decimals}f}"


def _decimals(value: float, integral: bool = False) -> int:
    """The places `_fmt` writes on its own: none for counts and from 100, one from 10, else up to two."""
    if integral or abs(value) >= 100:
        return 0
    text = f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"
    stripped = text.rstrip("0").rstrip(".")
    return len(stripped.split(".")[1]) if "." in stripped else 0


def _singular(word: str) -> str:
    if word in SINGULAR:
        return SINGULAR[word]
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith("ss") and len(word) > 2:
        return word[:-1]
    return word


def with_unit(
    value: float, unit: str, integral: bool = False, name: str = "", decimals: int | None = None
) -> str:
    """'2 children at home', '1 child at home', '1978' (a calendar year), '228 thousand USD a year'."""
    words = unit.split()
    calendar_year = is_calendar_year(value, unit, name)
    shown = _fmt(value, integral or calendar_year, not calendar_year, None if calendar_year else decimals)
    if words and shown in ("1", "-1"):  # '1 vehicle in household', not '1 vehicles'
        words = [_singular(words[0]), *words[1:]]
    return " ".join([shown, *words]) if words else shown


def _trait_numbers(trait: Trait, column: pd.Series) -> tuple[np.ndarray, str]:
    """(n,) float64 of a numeric-like trait, and its date reference ('' for other kinds)."""
    reference = date_reference(trait, column) if trait.kind is TraitKind.DATE else ""
    return as_numbers(trait.kind, column, trait.levels, reference), reference


def _unit(trait: Trait) -> str:
    return trait.unit or (trait.description if trait.description and len(trait.description) < 24 else "")


def value_text(
    trait: Trait, value: float, reference: str = "", integral: bool = False, decimals: int | None = None
) -> str:
    """A numeric-like value in the trait's own words: '1978', '412 days before 2026-11-30', 'bachelor'."""
    if trait.kind is TraitKind.ORDINAL:
        return trait.level_title(trait.levels[int(np.clip(round(value), 0, len(trait.levels) - 1))])
    if trait.kind is TraitKind.DATE:
        return f"{with_unit(value, 'days', integral, decimals=decimals)} before {reference}"
    return with_unit(value, _unit(trait), integral, trait.name, decimals)


def _pair_text(
    trait: Trait, values: tuple[float, float], reference: str, integral: bool, extra: int = 0
) -> tuple[str, str]:
    """A persona's value and the cohort's: the cohort's at its own places (`extra` more), so it reads the same
    in every persona's line ('108', never '107.9' beside one persona and '108' beside another); the persona's
    at those places at least ('2.90 vs 4.69', not '2.9 vs 4.69')."""
    persona, cohort = values
    cohort_places = _decimals(cohort, integral) + extra
    persona_places = max(_decimals(persona, integral) + extra, cohort_places)
    return (
        value_text(trait, persona, reference, integral, persona_places),
        value_text(trait, cohort, reference, integral, cohort_places),
    )


def _unit_repeats_title(trait: Trait) -> bool:
    """'children' counted in 'children at home': a condition says 'at least 2 children at home', not
    'children ≥ 2 children at home'."""
    unit, title = _unit(trait).split(), trait.title.split()
    return bool(unit and title) and _singular(unit[0].lower()) == _singular(title[-1].lower())


def _p_value(z: float) -> float:
    return float(2 * norm.sf(abs(z)))


def _numeric_text(
    trait: Trait, values: tuple[float, float, float, float], reference: str, integral: bool
) -> str:
    """'age: median 71 years vs 42 years in the cohort'; when the medians read the same (counts that are
    mostly 0) or hide the difference (under half the means' gap, or the other way round), the means, which
    carry it: 'kidhome: mean 0.2 vs 0.6 in the cohort'."""
    median_p, median_c, mean_p, mean_c = values
    persona, cohort = _pair_text(trait, (median_p, median_c), reference, integral)
    # medians that show the difference: read apart, the same way round as the means and at least half their gap
    # ('rr: median 0.50 vs 0.49' hid means of 0.489 vs 0.438)
    same_way = (median_p - median_c) * (mean_p - mean_c) > 0
    telling = trait.kind is TraitKind.ORDINAL or (  # an ordinal's mean rank is no level: its medians stand
        same_way and abs(median_p - median_c) >= abs(mean_p - mean_c) / 2
    )
    if persona != cohort and telling:
        return f"{trait.title}: median {persona} vs {cohort} in the cohort"
    for extra in range(4):  # means close enough to read alike get the places that tell them apart
        persona, cohort = _pair_text(trait, (mean_p, mean_c), reference, False, extra)
        if persona != cohort:
            break
    return f"{trait.title}: mean {persona} vs {cohort} in the cohort"


def _shares_by_persona(
    codes: np.ndarray, inverse: np.ndarray, k: int, levels: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-persona and cohort share of each level among rows where the trait is known."""
    known = codes >= 0
    counts = np.bincount(inverse[known] * levels + codes[known], minlength=k * levels).reshape(k, levels)
    per_persona = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    cohort = counts.sum(axis=0) / max(int(counts.sum()), 1)
    return per_persona, cohort


def _ordinal_text(trait: Trait, shares: tuple[np.ndarray, np.ndarray], j: int, higher: bool) -> str:
    """Medians of an ordered trait on one level: the cut where persona j's share differs most on the side its
    mean rank sits ('education ged or below: 60% vs 35%' for a persona that sits low), never a level share
    that reads the other way. A mean rank is a sum of the shares at or above each cut, so when it is higher
    (lower), some cut has more (less) of the persona above it.

    shares: (k, levels) per persona and (levels,) for the cohort, from _shares_by_persona."""
    per_persona, cohort = shares
    at_least_p = np.cumsum(per_persona[j][::-1])[::-1]  # (levels,) share at or above each level
    at_least_c = np.cumsum(cohort[::-1])[::-1]
    gaps = (at_least_p - at_least_c)[1:] * (1.0 if higher else -1.0)  # cuts between levels 1..L-1
    cut = int(np.argmax(gaps)) + 1 if len(gaps) else 0
    if higher:
        return f"{trait.title} {trait.level_title(trait.levels[cut])} or above: {at_least_p[cut]:.0%} vs {at_least_c[cut]:.0%} in the cohort"
    below_p, below_c = 1.0 - at_least_p[cut], 1.0 - at_least_c[cut]
    return f"{trait.title} {trait.level_title(trait.levels[max(cut - 1, 0)])} or below: {below_p:.0%} vs {below_c:.0%} in the cohort"


def _known_text(share_known: float) -> str:
    """' (known for 7% of them)' where a fifth or more of the persona has no value: its figures are of the
    rest alone ('children: 93% vs 72%' read as most of a persona being parents when 6% were known to be)."""
    return f" (known for {share_known:.0%} of them)" if share_known < KNOWN_SAID else ""


def _one_trait_effects(
    column: pd.Series, trait: Trait, inverse: np.ndarray, ids: np.ndarray
) -> list[tuple[int, TraitEffect, float]]:
    """One trait's (persona id, effect, z against the rest) for every persona; inverse: (n,) 0..k-1."""
    k = len(ids)
    out: list[tuple[int, TraitEffect, float]] = []
    if trait.numeric_like:
        values, reference = _trait_numbers(trait, column)
        known = ~np.isnan(values)
        present = values[known]
        std = float(np.std(present, ddof=1)) if present.size > 1 else 1.0
        std = std or 1.0
        mean_c = float(present.mean()) if present.size else 0.0
        median_c = float(np.median(present)) if present.size else 0.0
        integral = bool(present.size and np.all(present == np.round(present)))
        sums = np.bincount(inverse[known], weights=present, minlength=k)
        squares = np.bincount(inverse[known], weights=present**2, minlength=k)
        sizes = np.bincount(inverse[known], minlength=k)
        members = np.bincount(inverse, minlength=k)
        medians = pd.Series(present).groupby(inverse[known]).median()
        shares = None  # an ordinal's level shares, computed once if some persona's median ties the cohort's
        for j, pid in enumerate(ids):
            mean_p = sums[j] / sizes[j] if sizes[j] else mean_c
            median_p = float(medians.get(j, median_c))
            effect = (mean_p - mean_c) / std
            rest_n = present.size - sizes[j]
            z = 0.0
            if sizes[j] > 1 and rest_n > 1:
                mean_r = (sums.sum() - sums[j]) / rest_n
                var_p = max(squares[j] / sizes[j] - mean_p**2, 0.0)
                var_r = max((squares.sum() - squares[j]) / rest_n - mean_r**2, 0.0)
                spread = np.sqrt(var_p / sizes[j] + var_r / rest_n)
                gap = mean_p - mean_r
                # no spread inside either group: any gap is certain (a perfectly separated trait)
                z = float(gap / spread) if spread > 0 else (np.inf if abs(gap) > 1e-12 else 0.0)
            same_level = trait.kind is TraitKind.ORDINAL and value_text(trait, median_p) == value_text(
                trait, median_c
            )  # the medians name one level: a mean rank would read 'mean high_school vs high_school'
            text = _numeric_text(trait, (median_p, median_c, mean_p, mean_c), reference, integral)
            if same_level:
                if shares is None:
                    codes = np.where(known, values, -1).astype(np.int64)
                    shares = _shares_by_persona(codes, inverse, k, len(trait.levels))
                text = _ordinal_text(trait, shares, j, effect >= 0)
            level = "high" if effect >= 0 else "low"
            share_known = float(sizes[j] / members[j]) if members[j] else 1.0
            text += _known_text(share_known)
            effect_of = TraitEffect(trait.name, level, effect, median_p, median_c, text, known=share_known)
            out.append((int(pid), effect_of, z))
        return out
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
    known = codes >= 0
    sizes = np.bincount(inverse[known], minlength=k).astype(float)
    members = np.bincount(inverse, minlength=k)
    total = float(sizes.sum())
    for level, index in levels:
        share_c = float(cohort[index])
        spread = float(np.sqrt(share_c * (1 - share_c))) or 1.0
        label = (
            trait.title if trait.kind is TraitKind.BOOLEAN else f"{trait.title} {trait.level_title(level)}"
        )
        for j, pid in enumerate(ids):
            share_p = float(per_persona[j, index])
            rest_n = total - sizes[j]
            z = 0.0
            if sizes[j] and rest_n:
                share_r = (share_c * total - share_p * sizes[j]) / rest_n
                pooled = share_c * (1 - share_c) * (1 / sizes[j] + 1 / rest_n)
                z = (share_p - share_r) / np.sqrt(pooled) if pooled > 0 else 0.0
            share_known = float(sizes[j] / members[j]) if members[j] else 1.0
            text = f"{label}: {share_p:.0%} vs {share_c:.0%} in the cohort{_known_text(share_known)}"
            gap = (share_p - share_c) / spread
            effect = TraitEffect(trait.name, level, gap, share_p, share_c, text, known=share_known)
            out.append((int(pid), effect, z))
    return out


def trait_effects(
    frame: pd.DataFrame, persona: np.ndarray, traits: list[Trait]
) -> dict[int, list[TraitEffect]]:
    """Every trait's effect for every persona, strongest first; `salient` where the difference is both large
    (|effect| >= DEFINING_MIN_EFFECT) and significant against the rest of the cohort (two-sided z test,
    Bonferroni over every persona x trait level tested).

    Traits are measured on two threads (their numpy work releases the GIL; at 10M contacts this step took
    11 s on one core while the other idled) and merged in trait order, so the result does not depend on it."""
    persona = np.asarray(persona)
    if persona.size and np.issubdtype(persona.dtype, np.integer) and persona.min() >= 0:
        ids = np.flatnonzero(np.bincount(persona))  # np.unique's answer without sorting n ids
        position = np.zeros(int(ids.max()) + 1, dtype=np.int64)
        position[ids] = np.arange(len(ids))
        inverse = position[persona]  # (n,) 0..k-1
    else:
        ids, inverse = np.unique(persona, return_inverse=True)
    found: dict[int, list[tuple[TraitEffect, float]]] = {int(i): [] for i in ids}  # (effect, z against rest)
    columns = [frame[t.name] for t in traits]  # looked up here: the frame is only read on the threads
    with ThreadPoolExecutor(2) as pool:
        jobs = zip(columns, traits, strict=True)
        for measured in pool.map(lambda job: _one_trait_effects(*job, inverse, ids), jobs):
            for pid, effect, z in measured:
                found[pid].append((effect, z))
    tests = max(sum(len(v) for v in found.values()), 1)
    out: dict[int, list[TraitEffect]] = {}
    for pid, items in found.items():
        out[pid] = [
            replace(
                e,
                salient=abs(e.effect) >= DEFINING_MIN_EFFECT
                and _p_value(z) * tests < SIGNIFICANCE
                and e.known >= SALIENT_MIN_KNOWN,
            )
            for e, z in items
        ]
        out[pid].sort(key=lambda e: -abs(e.effect))
    return out


def defining_traits(effects: list[TraitEffect], limit: int = 5) -> list[TraitEffect]:
    """The strongest salient differences, one per trait. A yes/no trait defines on either side (0% with a
    voicemail plan against 27% in the cohort is as telling as 100%); a category by the level the persona has
    more of, and by a level it lacks only when no level of that trait is salient on the high side."""

    def category_level(e: TraitEffect) -> bool:  # not a number's side, not a yes/no trait
        return e.level not in ("high", "low", "true")

    over_represented = {e.trait for e in effects if e.salient and e.effect > 0 and category_level(e)}
    chosen: list[TraitEffect] = []
    seen: set[str] = set()
    for effect in effects:
        if effect.trait in seen or not effect.salient:
            continue
        if category_level(effect) and effect.effect < 0 and effect.trait in over_represented:
            continue
        chosen.append(effect)
        seen.add(effect.trait)
        if len(chosen) == limit:
            break
    return chosen


def _rule_matrix(
    frame: pd.DataFrame, traits: list[Trait]
) -> tuple[np.ndarray, list[tuple[Trait, str | None]]]:
    """Readable features for trees: raw numbers, 0/1 booleans, one column per category level; a missing value
    stays NaN (the tree sends it to one side of each split, and the rule's words say which: an unknown value
    filled with the median or with 'no' read as 'not parent' for contacts nobody knew about)."""
    columns, names = [], []
    for trait in traits:
        column = frame[trait.name]
        if (
            trait.kind is TraitKind.DATE
        ):  # days since 1970: a split reads as a calendar day, no reference needed
            values = (date_values(column) - EPOCH) / pd.Timedelta(days=1)
            columns.append(values.to_numpy(dtype="float64", na_value=np.nan))
            names.append((trait, None))
        elif trait.numeric_like:
            columns.append(_trait_numbers(trait, column)[0])
            names.append((trait, None))
        elif trait.kind is TraitKind.BOOLEAN:
            columns.append(column.astype("boolean").astype("float64").to_numpy(na_value=np.nan))
            names.append((trait, "true"))
        else:
            text = column.astype(object)
            missing = column.isna().to_numpy() | ~text.isin(trait.levels).to_numpy()
            for level in trait.levels:
                columns.append(np.where(missing, np.nan, (text == level).to_numpy(dtype="float64")))
                names.append((trait, level))
    return np.column_stack(columns), names


def _condition(
    trait: Trait, level: str | None, threshold: float, goes_left: bool, integral: bool = False
) -> str:
    """One step of a rule in the trait's words and unit: 'net worth > 917 thousand USD', 'children ≥ 2 ...'."""
    if not np.isfinite(threshold):  # the tree split the known values (left) from the unknown
        return f"{trait.title} known" if goes_left else f"{trait.title} unknown"
    if level is None and trait.kind is TraitKind.ORDINAL:  # ranks split between two levels
        below = trait.level_title(trait.levels[int(np.clip(np.floor(threshold), 0, len(trait.levels) - 1))])
        return f"{trait.title} at most {below}" if goes_left else f"{trait.title} above {below}"
    if (
        level is None and trait.kind is TraitKind.DATE
    ):  # a day number (_rule_matrix): the last day on the left
        day = (EPOCH + pd.Timedelta(days=float(np.floor(threshold)))).date().isoformat()
        return f"{trait.title} on or before {day}" if goes_left else f"{trait.title} after {day}"
    if level is None and integral:  # counts split at 1.5 read as "≤ 1" or "≥ 2", in the trait's unit
        below = float(np.floor(threshold))
        at_most, at_least = (value_text(trait, v, integral=True) for v in (below, below + 1))
        if goes_left and below == 0:  # 'no reports', not 'at most 0 reports'
            return _none_of(trait, at_most)
        if _unit_repeats_title(trait):
            return f"at most {at_most}" if goes_left else f"at least {at_least}"
        return f"{trait.title} ≤ {at_most}" if goes_left else f"{trait.title} ≥ {at_least}"
    if level is None:
        shown = value_text(trait, threshold)
        if _unit_repeats_title(trait):
            return f"at most {shown}" if goes_left else f"more than {shown}"
        return f"{trait.title} ≤ {shown}" if goes_left else f"{trait.title} > {shown}"
    if level == "true":
        return f"not {trait.title}" if goes_left else trait.title
    shown = trait.level_title(level)
    return f"{trait.title} is not {shown}" if goes_left else f"{trait.title} is {shown}"


def membership_rules(
    frame: pd.DataFrame, persona: np.ndarray, traits: list[Trait], seed: int, per_persona: int = 2
) -> dict[int, list[Rule]]:
    """Up to two short rules per persona from a depth-3 one-vs-rest tree, each with precision and coverage."""
    rng = np.random.default_rng(seed)
    index = np.sort(rng.choice(len(frame), RULE_SAMPLE, replace=False)) if len(frame) > RULE_SAMPLE else None
    sample = frame.iloc[index] if index is not None else frame
    labels = persona[index] if index is not None else persona
    x, names = _rule_matrix(sample, traits)
    integral = {  # numeric traits holding whole numbers only: their splits read as whole numbers
        trait.name
        for j, (trait, level) in enumerate(names)
        if level is None
        and trait.kind is TraitKind.NUMERIC
        and np.all(np.isnan(x[:, j]) | (x[:, j] == np.round(x[:, j])))
    }

    def persona_rules(pid: int) -> list[Rule]:
        target = labels == pid
        tree = DecisionTreeClassifier(max_depth=3, min_samples_leaf=max(20, len(x) // 100), random_state=seed)
        tree.fit(x, target)
        covered = max(int(target.sum()), 1)
        found = [
            Rule(path, hits / size, hits / covered)
            for path, hits, size in _leaf_paths(tree, names, x)
            if size and hits / size >= 0.5 and path
        ]
        found.sort(key=lambda r: -(r.precision * r.coverage))
        return [
            Rule(_simplify(r.conditions, integral), round(r.precision, 3), round(r.coverage, 3))
            for r in found[:per_persona]
        ]

    pids = [int(pid) for pid in np.unique(labels)]
    return dict(zip(pids, in_parallel(persona_rules, pids), strict=True))  # trees fit side by side


def _leaf_paths(
    tree: DecisionTreeClassifier, names: list[tuple[Trait, str | None]], x: np.ndarray
) -> list[tuple[list, float, float]]:
    """Every leaf's path of (trait, level, threshold, went_left, unknown_too) steps, with its member hits and
    size; unknown_too: contacts reaching the split lacked the value and it sent them this way (x: the
    (n, columns) matrix it was fitted on). A threshold of +inf splits the known values from the unknown."""
    t = tree.tree_
    reached = tree.decision_path(x).tocsc()  # (n, nodes): which rows pass through each node
    unknown_at = {  # internal node -> whether rows reaching it lack its feature's value
        node: bool(
            np.isnan(
                x[reached.indices[reached.indptr[node] : reached.indptr[node + 1]], t.feature[node]]
            ).any()
        )
        for node in range(t.node_count)
        if t.children_left[node] != -1
    }
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
        unknown_left = unknown_at[node] and bool(t.missing_go_to_left[node])
        unknown_right = unknown_at[node] and not t.missing_go_to_left[node]
        stack.append((t.children_right[node], [*path, (trait, level, threshold, False, unknown_right)]))
        stack.append((t.children_left[node], [*path, (trait, level, threshold, True, unknown_left)]))
    return out


def _simplify(path: list, integral: set[str] = frozenset()) -> list[str]:
    """Readable conditions: the tightest bound per numeric trait, and no 'is not' beside an 'is' of the same trait."""
    bounds: dict[tuple[str, bool], tuple] = {}
    positive = {trait.name for trait, level, _, left, _ in path if level not in (None, "true") and not left}
    bounded = [trait.name for trait, _, threshold, _, _ in path if np.isfinite(threshold)]
    kept = []
    for step in path:
        trait, level, threshold, left, _ = step
        if not np.isfinite(threshold):  # known or unknown: 'known' goes without saying beside a bound
            if not (left and trait.name in bounded):
                kept.append(step)
            continue
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
    return _joined_bounds(kept, integral)


def _none_of(trait: Trait, zero: str) -> str:
    """A count of nothing: 'no reports' where the unit names the count, else 'no dependents'."""
    return "no " + (zero.removeprefix("0 ") if _unit_repeats_title(trait) else trait.title)


def _joined_bounds(path: list, integral: set[str]) -> list[str]:
    """The path's conditions in words; a count or rank bounded on both sides reads as one condition where
    its first bound stood: 'exactly 1 report', 'dependents 1 to 2', 'education high_school' (not 'at least 1
    report and at most 1 report', 'education at most high_school and education above ged')."""
    sides: dict[str, dict[bool, float]] = {}
    unknown: dict[str, bool] = {}  # a both-sided bound holds unknown values only when both its steps do
    for trait, level, threshold, left, unknown_too in path:
        if (
            level is None
            and np.isfinite(threshold)
            and (trait.kind is TraitKind.ORDINAL or trait.name in integral)
        ):
            sides.setdefault(trait.name, {})[left] = threshold
            unknown[trait.name] = unknown.get(trait.name, True) and unknown_too
    out, done = [], set()
    for trait, level, threshold, left, unknown_too in path:
        bounds = sides.get(trait.name, {}) if level is None and np.isfinite(threshold) else {}
        if len(bounds) < 2:
            condition = _condition(trait, level, threshold, left, integral=trait.name in integral)
            out.append(condition + (OR_UNKNOWN if unknown_too and np.isfinite(threshold) else ""))
            continue
        if trait.name in done:
            continue
        done.add(trait.name)
        low, high = int(np.floor(bounds[False])) + 1, int(np.floor(bounds[True]))  # whole values kept
        tail = OR_UNKNOWN if unknown[trait.name] else ""
        if trait.kind is TraitKind.ORDINAL:
            first, last = (value_text(trait, v) for v in (low, high))
            out.append(
                (f"{trait.title} {first}" if low >= high else f"{trait.title} {first} to {last}") + tail
            )
            continue
        shown = value_text(trait, high, integral=True)
        repeats = _unit_repeats_title(trait)
        if low >= high:
            out.append((f"exactly {shown}" if repeats else f"{trait.title} exactly {shown}") + tail)
        else:
            lowest = _fmt(low, integral=True)  # '10,794 to 46,910 USD a year', separators alike
            out.append((f"{lowest} to {shown}" if repeats else f"{trait.title} {lowest} to {shown}") + tail)
    return out
