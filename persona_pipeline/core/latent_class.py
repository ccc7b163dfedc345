"""Latent-class personas: each persona a product of per-trait distributions, fitted by EM.

Why: on mixed-type customer bases with overlapping segments, k-means on the one-hot, median-filled feature
matrix misses much of the structure (the quality panel, BENCHMARKS.md). Here a number-like trait (as the
feature transform standardizes it) is Gaussian with a per-persona mean and variance, a yes/no or category
trait has a per-persona distribution over its levels, and **a missing value adds no term**: nothing is imputed.

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
from scipy.special import logsumexp

from persona_pipeline.core.features import FeatureTransform
from persona_pipeline.core.traits import NUMERIC_LIKE

VAR_FLOOR = 0.02  # per-persona variance floor of a standardized number: no persona collapses onto one value
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
    [no, yes]): level_costs (k, levels) = -log p(level | persona). A missing value costs 0 either way.
    """

    mean: np.ndarray | None = None
    half_precision: np.ndarray | None = None
    offset: np.ndarray | None = None
    level_costs: np.ndarray | None = None

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
        return {"level_costs": plain(self.level_costs)}

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
    levels: sparse.csr_matrix
    blocks: list[slice]
    order: list[tuple[str, int]]


def _data(transform: FeatureTransform, values: list[np.ndarray]) -> _Data:
    numbers, blocks, order, rows, cols = [], [], [], [], []
    width = 0
    for enc, column in zip(transform.encodings, values, strict=True):
        if enc.kind in NUMERIC_LIKE:
            order.append(("number", len(numbers)))
            numbers.append(column.astype(np.float64))
        else:
            order.append(("levels", len(blocks)))
            present = np.flatnonzero(column >= 0)
            rows.append(present)
            cols.append(width + column[present])
            levels = len(enc.levels) if enc.levels else 2  # yes/no: [no, yes]
            blocks.append(slice(width, width + levels))
            width += levels
    n = len(values[0])
    raw = np.column_stack(numbers) if numbers else np.zeros((n, 0))
    observed = ~np.isnan(raw)
    row, col = (np.concatenate(rows), np.concatenate(cols)) if rows else (np.zeros(0, int), np.zeros(0, int))
    indicator = sparse.csr_matrix((np.ones(len(row)), (row, col)), shape=(n, width))
    return _Data(np.where(observed, raw, 0.0), observed.astype(np.float64), indicator, blocks, order)


def _m_step(data: _Data, resp: np.ndarray) -> LatentClasses:
    """The parameters that best explain the rows weighted by resp (n, k)."""
    weights = resp.sum(axis=0) + 1e-9
    seen = resp.T @ data.observed  # (k, p): each persona's weight of rows that have the number
    some = seen > 1e-6
    means = np.where(some, (resp.T @ data.numbers) / np.where(some, seen, 1.0), 0.0)
    second = np.where(some, (resp.T @ (data.numbers**2)) / np.where(some, seen, 1.0), 1.0)
    variances = np.maximum(np.where(some, second - means**2, 1.0), VAR_FLOOR)
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
            terms.append(TraitTerms(level_costs=level_costs[index]))
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


def em(data: _Data, start: np.ndarray, k: int) -> EMFit:
    """EM from a hard assignment start (n,) of cluster indices 0..k-1."""
    resp = np.zeros((len(start), k))
    resp[np.arange(len(start)), start] = 1.0
    previous = mean = -np.inf
    model = _m_step(data, resp)
    iterations = 0
    while iterations < ITERATIONS:
        iterations += 1
        joint = -_fast_costs(data, model)
        total = logsumexp(joint, axis=1)
        mean = float(total.mean())
        if mean - previous < TOLERANCE:
            break
        previous = mean
        resp = np.exp(joint - total[:, None])
        model = _m_step(data, resp)
    return EMFit(model, mean, iterations)


def fit(
    transform: FeatureTransform,
    values: list[np.ndarray],
    k: int,
    starts: list[np.ndarray],
    keep: np.ndarray | None = None,
    keep_margin: float = 0.0,
) -> tuple[EMFit, bool]:
    """The best EM fit over hard starts (each (n,) of indices 0..k-1) on these rows; with `keep` (a start
    from the previous build), that fit is kept unless another beats its log-likelihood per contact by more
    than keep_margin. Returns the fit and whether it is the kept one."""
    data = _data(transform, values)
    best = None
    for start in starts:
        candidate = em(data, start, k)
        if best is None or candidate.loglik > best.loglik:
            best = candidate
    if keep is not None:
        kept = em(data, keep, k)
        if best is None or best.loglik <= kept.loglik + keep_margin:
            return kept, True
    if best is None:
        raise ValueError("a latent-class fit needs at least one start")
    return best, False
