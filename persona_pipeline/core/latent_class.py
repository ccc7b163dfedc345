"""Latent-class personas: each persona a product of per-trait distributions, fitted by EM.

Why: on mixed-type customer bases with overlapping segments, k-means on the one-hot, median-filled feature
matrix misses much of the structure (the quality panel, BENCHMARKS.md). Here a number-like trait (as the
feature transform standardizes it) is Gaussian with a per-persona mean and variance, a count or rank with few
values (children, vehicles: at most COUNT_LEVELS of them), a yes/no or a category trait has a per-persona
distribution over its levels, and **a missing value adds no term**: nothing is imputed.

A contact's cost for persona c is -log(weight_c) plus, for each trait it has, -log p(value | c); it joins the
cheapest persona (the lowest index on a tie), and its confidence is that persona's posterior probability.
The terms are added in one fixed order, left to right from the weight's, with the same operations in the
batch path (`costs`), the one-contact path (core/scoring.py) and the warehouse's SQL (core/sql_scoring.py),
so all three assign every contact the same persona.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.cluster import kmeans_plusplus
from sklearn.metrics import adjusted_rand_score

from persona_pipeline.core import clustering
from persona_pipeline.core.features import FeatureTransform
from persona_pipeline.core.parallel import in_parallel
from persona_pipeline.core.traits import NUMERIC_LIKE

VAR_FLOOR = 0.02  # per-persona variance floor of a standardized number: no persona collapses onto one value
# a number with at most this many distinct values (a count, a rank) is modelled by its levels, each persona
# with its own share of each: a bell curve over 0, 1, 2 children claims spikes and splits segments
# (tune split, at the stability threshold of 0.9 used before: true k 8 -> 11 of 20 cases, within one 11 -> 15;
# benchmarks/tune_latent_k.py --count-levels)
COUNT_LEVELS = 12
DISCRETE_LEVELS = (
    30  # a number with more values, but at most this many, is treated as rounded (_variance_floor)
)
LEVEL_PRIOR = 0.5  # pseudo-count per level: a level unseen in a persona is unlikely there, not impossible
ITERATIONS = 150  # EM stops here at the latest
TOLERANCE = 1e-5  # ... or once the mean log-likelihood per contact improves by less than this
EXP_FLOOR = -700.0  # exp() of a cost gap below this is 0 to every purpose; SQL's EXP errors on underflow
LOG_2PI = float(np.log(2 * np.pi))


@dataclass
class TraitTerms:
    """One trait's part of every persona's cost.

    Number-like: for a present value x, (x - mean) * (x - mean) * half_precision + offset, where
    half_precision = 0.5 / variance and offset = 0.5 * log(2 pi variance); all (k,). Levels (yes/no is
    [no, yes]): level_costs (k, levels) = -log p(level | persona). A count (a number with few values) is
    levels too, with thresholds: a value's level is how many cuts lie at or below it, so a value between two
    the fit saw reads as the nearer one. A missing value costs 0 in every case.
    """

    mean: np.ndarray | None = None
    half_precision: np.ndarray | None = None
    offset: np.ndarray | None = None
    level_costs: np.ndarray | None = None
    thresholds: np.ndarray | None = None  # a count's (levels - 1,) cuts between its standardized values

    def codes(self, column: np.ndarray) -> np.ndarray:
        """(n,) level codes of a count's standardized values (n,): how many cuts are at or below each value;
        -1 where missing."""
        x = column.astype(np.float64)
        return np.where(np.isnan(x), -1, np.searchsorted(self.thresholds, x, side="right")).astype(np.int64)

    @property
    def numeric(self) -> bool:
        return self.level_costs is None

    def to_dict(self, decimals: int | None) -> dict[str, Any]:
        def plain(a: np.ndarray) -> Any:
            return (a if decimals is None else a.round(decimals)).tolist()

        if self.numeric:
            return {
                "mean": plain(self.mean),
                "half_precision": plain(self.half_precision),
                "offset": plain(self.offset),
            }
        if self.thresholds is None:
            return {"level_costs": plain(self.level_costs)}
        return {"level_costs": plain(self.level_costs), "thresholds": self.thresholds.tolist()}

    @staticmethod
    def from_dict(data: dict[str, Any]) -> TraitTerms:
        return TraitTerms(**{key: np.asarray(value, dtype=np.float64) for key, value in data.items()})


@dataclass
class LatentClasses:
    """The fitted model: per persona its base cost (k,) = -log(weight), and each trait's terms in the
    transform's order."""

    base: np.ndarray
    terms: list[TraitTerms]

    def to_dict(self, decimals: int | None = 6) -> dict[str, Any]:
        base = self.base if decimals is None else self.base.round(decimals)
        return {"base": base.tolist(), "terms": [t.to_dict(decimals) for t in self.terms]}

    @staticmethod
    def from_dict(data: dict[str, Any]) -> LatentClasses:
        return LatentClasses(
            np.asarray(data["base"], dtype=np.float64), [TraitTerms.from_dict(t) for t in data["terms"]]
        )


def keep_classes(model: LatentClasses, kept: np.ndarray) -> LatentClasses:
    """The model with only the classes `kept` (indices, in order): a class nobody joins is no persona."""
    terms = [
        TraitTerms(level_costs=t.level_costs[kept], thresholds=t.thresholds)
        if not t.numeric
        else TraitTerms(t.mean[kept], t.half_precision[kept], t.offset[kept])
        for t in model.terms
    ]
    return LatentClasses(model.base[kept], terms)


def costs(values: list[np.ndarray], model: LatentClasses) -> np.ndarray:
    """(n, k) float64 cost of each contact for each persona, in the order every path adds the terms.

    values: per trait, FeatureTransform.trait_values's (n,) array (float32 numbers with NaN, or int codes)."""
    n, k = len(values[0]) if values else 0, len(model.base)
    out = np.empty((n, k), dtype=np.float64)
    out[:] = model.base
    for column, terms in zip(values, model.terms, strict=True):
        if terms.numeric:
            x = column.astype(np.float64)
            present = ~np.isnan(x)
            for c in range(k):
                gap = x - terms.mean[c]
                out[:, c] = out[:, c] + np.where(
                    present, gap * gap * terms.half_precision[c] + terms.offset[c], 0.0
                )
        else:
            if terms.thresholds is not None:
                column = terms.codes(column)
            table = np.hstack(
                [terms.level_costs, np.zeros((k, 1))]
            )  # code -1 (missing) wraps to the 0 column
            out += np.take(table, column, axis=1, mode="wrap").T
    return out


def assign(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The cheapest persona's index (lowest on a tie) and its posterior probability, from (n, k) costs."""
    labels = cost.argmin(axis=1).astype(np.int32)
    best = np.take_along_axis(cost, labels[:, None].astype(np.int64), axis=1)
    posterior = 1.0 / np.exp(np.maximum(best - cost, EXP_FLOOR)).sum(axis=1)
    return labels, posterior.astype(np.float32)


@dataclass
class _Data:
    """A sample as EM reads it: numbers (n, p) with 0 where missing and their presence (n, p); every level
    of every level trait as one sparse indicator matrix (n, L), each trait's columns a block; `order` maps
    each trait to ("number", column) or ("levels", block)."""

    numbers: np.ndarray
    observed: np.ndarray
    floors: np.ndarray  # (p,) each number's variance floor: VAR_FLOOR, or its rounding's if coarser
    levels: sparse.csr_matrix
    blocks: list[slice]
    order: list[tuple[str, int]]
    thresholds: dict[int, np.ndarray]  # block index -> a count's cuts (levels modelled from a number)

    @property
    def free(self) -> int:
        """Free parameters per persona: a number's mean and variance, a level block's shares."""
        return 2 * self.numbers.shape[1] + sum(b.stop - b.start - 1 for b in self.blocks)


def _cuts(column: np.ndarray) -> np.ndarray | None:
    """A count's cuts, halfway between its distinct standardized values (n,), or None for a number with more
    than COUNT_LEVELS of them (or under 2)."""
    distinct = np.unique(column[~np.isnan(column)].astype(np.float64))
    if len(distinct) < 2 or len(distinct) > COUNT_LEVELS:
        return None
    return (distinct[:-1] + distinct[1:]) / 2


def _data(transform: FeatureTransform, values: list[np.ndarray]) -> _Data:
    numbers, blocks, order, rows, cols = [], [], [], [], []
    thresholds: dict[int, np.ndarray] = {}
    width = 0
    for enc, column in zip(transform.encodings, values, strict=True):
        cuts = _cuts(column) if enc.kind in NUMERIC_LIKE else None
        if enc.kind in NUMERIC_LIKE and cuts is None:
            order.append(("number", len(numbers)))
            numbers.append(column.astype(np.float64))
        else:
            order.append(("levels", len(blocks)))
            if cuts is not None:
                thresholds[len(blocks)] = cuts
                column = TraitTerms(thresholds=cuts).codes(column)
            present = np.flatnonzero(column >= 0)
            rows.append(present)
            cols.append(width + column[present])
            if cuts is not None:
                levels = len(cuts) + 1
            else:
                levels = len(enc.levels) if enc.levels else 2  # yes/no: [no, yes]
            blocks.append(slice(width, width + levels))
            width += levels
    n = len(values[0])
    raw = np.column_stack(numbers) if numbers else np.zeros((n, 0))
    observed = ~np.isnan(raw)
    floors = np.array([_variance_floor(column[~np.isnan(column)]) for column in raw.T])
    row, col = (np.concatenate(rows), np.concatenate(cols)) if rows else (np.zeros(0, int), np.zeros(0, int))
    indicator = sparse.csr_matrix((np.ones(len(row)), (row, col)), shape=(n, width))
    return _Data(
        np.where(observed, raw, 0.0),
        observed.astype(np.float64),
        floors,
        indicator,
        blocks,
        order,
        thresholds,
    )


def _variance_floor(present: np.ndarray) -> float:
    """A number's variance floor: a whole-number count (children, vehicles) or a rank takes few values, and a
    persona must not claim one of them as a spike narrower than the rounding itself, whose variance is
    step^2 / 12 for values a `step` apart. Continuous numbers keep VAR_FLOOR. present: (m,) standardized."""
    distinct = np.unique(present)
    if len(distinct) < 2 or len(distinct) > DISCRETE_LEVELS:
        return VAR_FLOOR
    step = float(np.diff(distinct).min())
    return max(VAR_FLOOR, step * step / 12.0)


def _m_step(data: _Data, resp: np.ndarray) -> LatentClasses:
    """The parameters that best explain the rows weighted by resp (n, k)."""
    weights = resp.sum(axis=0) + 1e-9
    seen = resp.T @ data.observed  # (k, p): each persona's weight of rows that have the number
    some = seen > 1e-6
    means = np.where(some, (resp.T @ data.numbers) / np.where(some, seen, 1.0), 0.0)
    second = np.where(some, (resp.T @ (data.numbers**2)) / np.where(some, seen, 1.0), 1.0)
    variances = np.maximum(np.where(some, second - means**2, 1.0), data.floors)
    counts = np.asarray(data.levels.T @ resp).T + LEVEL_PRIOR  # (k, L)
    level_costs = [
        -np.log(counts[:, block] / counts[:, block].sum(axis=1, keepdims=True)) for block in data.blocks
    ]
    terms = []
    for kind, index in data.order:
        if kind == "number":
            variance = variances[:, index]
            terms.append(TraitTerms(means[:, index], 0.5 / variance, 0.5 * (LOG_2PI + np.log(variance))))
        else:
            terms.append(TraitTerms(level_costs=level_costs[index], thresholds=data.thresholds.get(index)))
    return LatentClasses(-np.log(weights / weights.sum()), terms)


def _fast_costs(data: _Data, model: LatentClasses) -> np.ndarray:
    """(n, k) costs as `costs` gives them up to rounding, in a few matrix operations (EM's inner loop)."""
    numeric = [t for t in model.terms if t.numeric]
    out = np.tile(model.base, (len(data.numbers), 1))
    if numeric:
        mean = np.column_stack([t.mean for t in numeric])  # (k, p)
        half = np.column_stack([t.half_precision for t in numeric])
        offset = np.column_stack([t.offset for t in numeric])
        x, m = data.numbers, data.observed
        # sum_j m * ((x - mu)^2 * h + o) = (x^2 m) @ h - 2 (x m) @ (mu h) + m @ (mu^2 h + o); x is 0 where missing
        out += (x**2) @ half.T - 2 * x @ (mean * half).T + m @ (mean**2 * half + offset).T
    levels = [t.level_costs for t in model.terms if not t.numeric]
    if levels:
        out += data.levels @ np.hstack(levels).T
    return out


@dataclass
class EMFit:
    model: LatentClasses
    loglik: float  # mean log-likelihood per contact of the rows fitted
    iterations: int


def _hard(start: np.ndarray, k: int) -> np.ndarray:
    """(n, k) responsibilities of a hard assignment (n,) of indices 0..k-1."""
    resp = np.zeros((len(start), k))
    resp[np.arange(len(start)), start] = 1.0
    return resp


def _em(data: _Data, model: LatentClasses, limit: int = ITERATIONS) -> EMFit:
    """EM from these parameters, for at most `limit` iterations or until it converges."""
    previous = mean = -np.inf
    iterations = 0
    while iterations < limit:
        iterations += 1
        loglik, posterior = _posterior(-_fast_costs(data, model))
        mean = float(loglik.mean())
        if mean - previous < TOLERANCE:
            break
        previous = mean
        model = _m_step(data, posterior)
    return EMFit(model, mean, iterations)


def _posterior(joint: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's log-likelihood (n,) and its posterior over the classes (n, k), from the joint
    log-probabilities (n, k): shifted by each row's largest, so one exp serves both."""
    top = joint[:, 0].copy()
    for c in range(1, joint.shape[1]):  # column by column: 5x numpy's max over short rows, the same values
        np.maximum(top, joint[:, c], out=top)
    scaled = np.exp(joint - top[:, None])
    sums = _row_sums(scaled)
    return np.log(sums) + top, scaled / sums[:, None]


def _row_sums(a: np.ndarray) -> np.ndarray:
    """(n,) sums of the rows of a (n, k), column by column (4x numpy's sum over short rows) in numpy's own
    order for k < 16 (one after another under 8 columns; from 8, its eight pairwise partial sums first), so
    EM's fits are bit for bit the ones numpy's sum gave."""
    k = a.shape[1]
    if k >= 16:
        return a.sum(axis=1)
    if k < 8:
        total = a[:, 0].copy()
        first = 1
    else:
        c = [a[:, j] for j in range(8)]
        total = ((c[0] + c[1]) + (c[2] + c[3])) + ((c[4] + c[5]) + (c[6] + c[7]))
        first = 8
    for j in range(first, k):
        total += a[:, j]
    return total


def starts_from(x: np.ndarray, k: int, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """`count` k-means++ draws of k centres on the features x (n, d), each as a hard start (n,)."""
    seeds = [int(rng.integers(2**31)) for _ in range(count)]  # drawn in order, whatever the threads do

    def start(seed: int) -> np.ndarray:
        centres, _ = kmeans_plusplus(x, k, random_state=seed)
        return clustering.nearest_two(x, centres)[0]

    return in_parallel(start, seeds)


def fit(
    transform: FeatureTransform,
    values: list[np.ndarray],
    k: int,
    starts: list[np.ndarray],
    keep: np.ndarray | None = None,
    keep_margin: float = 0.0,
    short_runs: int = 0,
    finalists: int = 1,
) -> tuple[EMFit, bool]:
    """The best EM fit over hard starts (each (n,) of indices 0..k-1) on these rows; with `keep` (a start
    from the previous build), that fit is kept unless another beats its log-likelihood per contact by more
    than keep_margin. With `short_runs`, every start runs that many iterations and only the best `finalists`
    run on to convergence (many starts for the price of a few). Returns the fit and whether it is the kept one.
    """
    if not starts:
        raise ValueError("a latent-class fit needs at least one start")
    data = _data(transform, values)
    if short_runs and len(starts) > finalists:
        short = in_parallel(lambda start: _em(data, _m_step(data, _hard(start, k)), short_runs), starts)
        best_short = sorted(short, key=lambda f: -f.loglik)[:finalists]
        fits = in_parallel(lambda f: _em(data, f.model), best_short)
    else:
        fits = in_parallel(lambda start: _em(data, _m_step(data, _hard(start, k))), starts)
    best = max(fits, key=lambda f: f.loglik)  # the first of equals: deterministic
    if keep is not None:
        kept = _em(data, _m_step(data, _hard(keep, k)))
        if best.loglik <= kept.loglik + keep_margin:
            return kept, True
    return best, False


CHOOSE_SAMPLE = 8_000  # contacts the fits that choose k see
CHOOSE_STARTS = 3  # k-means++ starts per fit while choosing k
# split-half agreement (ARI) a k needs, the one every method and the build's check use: with counts by their
# levels and the tolerance below, the true k on 12 of 20 tune cases and within one on 15 (the k-means rule 4
# and 10; 0.9 here 11 and 15, 0.7 11 and 17), our generator's 6 segments on 5 seeds of 5 at 0.6-0.9
# (benchmarks/tune_latent_k.py). Before counts had their levels, 0.7 and 0.8 split our generator into 7-10.
STABLE = clustering.STABLE
ICL_TOLERANCE = 0.05  # ICL per contact within which the fewer personas win (tune split and our generator)


def _posterior_entropy(cost: np.ndarray) -> tuple[float, float]:
    """Total log-likelihood and the posterior's summed entropy, from (n, k) costs."""
    loglik, posterior = _posterior(-cost)
    return float(loglik.sum()), float(-(posterior * np.log(np.maximum(posterior, 1e-300))).sum())


class LatentKScores:
    """Per-k figures of latent-class fits on one sample: ICL (BIC plus twice the posterior's entropy: k whose
    personas overlap heavily pay for it) and smallest persona at once, split-half stability when first asked.

    x: (n, d) the k-means features of the sample (starts); values: its trait_values."""

    def __init__(
        self, transform: FeatureTransform, values: list[np.ndarray], x: np.ndarray, seed: int, k_max: int
    ) -> None:
        self.transform, self.values, self.x, self.seed = transform, values, x, seed
        n = len(x)
        free = _data(transform, values).free
        self.models: dict[int, LatentClasses] = {}
        self.by_k: dict[int, dict[str, float | None]] = {}
        fitted = in_parallel(
            lambda k: _quick_fit(transform, values, x, k, np.random.default_rng(seed + k)),
            list(range(clustering.K_MIN, k_max + 1)),
        )
        for k, model in zip(range(clustering.K_MIN, k_max + 1), fitted, strict=True):
            cost = costs(values, model)
            loglik, entropy = _posterior_entropy(cost)
            parameters = (k - 1) + k * free
            self.models[k] = model
            self.by_k[k] = {
                "k": k,
                "icl": (-2 * loglik + parameters * np.log(n) + 2 * entropy) / n,
                "smallest": float(np.bincount(cost.argmin(axis=1), minlength=k).min() / n),
                "stability": None,
            }

    def stability(self, k: int) -> float:
        if self.by_k[k]["stability"] is None:
            self.by_k[k]["stability"] = _halves_agree(self.transform, self.values, self.x, self.seed, k)
        return float(self.by_k[k]["stability"])

    def candidate(self, k: int, slack: float = 1.0) -> bool:
        return (
            self.by_k[k]["smallest"] >= clustering.MIN_SHARE * slack and self.stability(k) >= STABLE * slack
        )

    def verdict(self, k: int, chosen: int, kept_previous: bool = False) -> str:
        score = self.by_k[k]
        if k == chosen:
            return "chosen"
        if score["smallest"] < clustering.MIN_SHARE:
            return f"a persona under {clustering.MIN_SHARE:.0%}"
        if score["stability"] is None:
            return (
                "not measured: a k with a lower ICL was chosen"
                if score["icl"] > self.by_k[chosen]["icl"]
                else "not measured"
            )
        if score["stability"] < STABLE:
            return f"not reproducible: stability under {STABLE:.2f}"
        if score["icl"] < self.by_k[chosen]["icl"] and kept_previous:
            return "reproducible, lower ICL; the previous build's k was kept"
        if score["icl"] < self.by_k[chosen]["icl"]:
            return f"reproducible; ICL lower by under {ICL_TOLERANCE:g} per contact: fewer personas preferred"
        return f"reproducible; ICL higher than k={chosen}'s"


def _quick_fit(
    transform: FeatureTransform, values: list[np.ndarray], x: np.ndarray, k: int, rng: np.random.Generator
) -> LatentClasses:
    """The best of CHOOSE_STARTS k-means++ starts, as choosing k fits every k and every half."""
    return fit(transform, values, k, starts_from(x, k, CHOOSE_STARTS, rng))[0].model


def _halves_agree(
    transform: FeatureTransform, values: list[np.ndarray], x: np.ndarray, seed: int, k: int
) -> float:
    """Fits on two disjoint halves of these rows, both applied to all of them, compared by ARI (1.0: the same
    personas). values: per trait (m,); x: (m, d) the k-means features (starts). Under 4 rows per persona
    there is nothing to compare: 0.0, as k-means' split_half_stability says."""
    if len(x) < 4 * k:
        return 0.0
    order = np.random.default_rng(seed + 7919).permutation(len(x))

    def half(i: int) -> np.ndarray:
        rows = (order[: len(order) // 2], order[len(order) // 2 :])[i]
        model = _quick_fit(
            transform, [v[rows] for v in values], x[rows], k, np.random.default_rng(seed + 100 * k + i)
        )
        return costs(values, model).argmin(axis=1)

    return float(adjusted_rand_score(*in_parallel(half, [0, 1])))


def split_half(
    transform: FeatureTransform, values: list[np.ndarray], x: np.ndarray, seed: int, k: int
) -> float:
    """Split-half stability at a k the user set, on the same kind of sample choose_k uses; values: per trait
    (n,); x: (n, d)."""
    rows = clustering.sample_rows(len(x), CHOOSE_SAMPLE, np.random.default_rng(seed))
    return _halves_agree(transform, [v[rows] for v in values], x[rows], seed, k)


def choose_k(
    transform: FeatureTransform,
    values: list[np.ndarray],
    x: np.ndarray,
    seed: int,
    progress: clustering.Progress | None = None,
    previous_k: int | None = None,
) -> clustering.KChoice:
    """Among k whose personas are reproducible (split-half stability at least STABLE) and none under
    MIN_SHARE, the one the data supports best (lowest ICL); stability is measured in ICL order, so only as
    many k as needed pay for it. A rebuild keeps its k while it is nearly a candidate (REBUILD_SLACK).
    values: per trait (n,); x: (n, d) the k-means features."""
    rows = clustering.sample_rows(len(x), CHOOSE_SAMPLE, np.random.default_rng(seed))
    k_max = min(clustering.K_MAX, len(rows) // 10)
    if k_max < clustering.K_MIN:
        raise clustering.ClusteringError(
            f"the cohort has {len(x)} contacts: too few to split into {clustering.K_MIN} personas reliably"
        )
    scores = LatentKScores(transform, [v[rows] for v in values], x[rows], seed, k_max)
    if progress:
        progress(
            f"choosing k: latent-class fits for k={clustering.K_MIN}..{k_max} on {len(rows):,} contacts; "
            "measuring stability in ICL order"
        )
    by_k = scores.by_k
    ranked = sorted(by_k, key=lambda k: (by_k[k]["icl"], k))
    best = next((k for k in ranked if scores.candidate(k)), None)
    if best is not None:  # fewer personas when the data supports them nearly as well
        near = [k for k in ranked if k < best and by_k[k]["icl"] <= by_k[best]["icl"] + ICL_TOLERANCE]
        best = min([k for k in near if scores.candidate(k)], default=best)
    if previous_k in by_k and previous_k != best and scores.candidate(previous_k, clustering.REBUILD_SLACK):
        # as clustering.pick_k: a rebuild keeps personas that still hold, whatever k a few contacts now favour
        return clustering.KChoice(
            previous_k,
            clustering.kept_reason(
                previous_k, scores.stability(previous_k), by_k[previous_k]["smallest"], best
            ),
            [{**s, "verdict": scores.verdict(k, previous_k, True)} for k, s in by_k.items()],
            latent=scores.models[previous_k],
        )
    if best is not None:
        chosen = best
    else:
        sized = [k for k in by_k if by_k[k]["smallest"] >= clustering.MIN_SHARE] or [clustering.K_MIN]
        chosen = max(sized, key=lambda k: (round(scores.stability(k), 2), k))
        table = [{**s, "verdict": scores.verdict(k, chosen)} for k, s in by_k.items()]
        return clustering.KChoice(
            chosen,
            f"no k from {clustering.K_MIN} to {k_max} reaches the split-half stability of {STABLE:.2f} this method "
            f"asks with every persona at least {clustering.MIN_SHARE:.0%}; k={chosen} is the most stable of them "
            f"(split-half {scores.stability(chosen):.2f})",
            table,
            latent=scores.models[chosen],
        )
    score = by_k[chosen]
    table = [{**s, "verdict": scores.verdict(k, chosen)} for k, s in by_k.items()]
    return clustering.KChoice(
        chosen,
        f"the reproducible k the data supports best: k={chosen} has the lowest ICL "
        f"({score['icl']:.3f} per contact; lower means a better fit for its size, with well-separated personas; "
        f"within {ICL_TOLERANCE:g} the fewer personas) among k whose latent classes are reproducible (split-half stability "
        f"{scores.stability(chosen):.2f}, at least {STABLE:.2f}), smallest persona {score['smallest']:.1%}",
        table,
        latent=scores.models[chosen],
    )
