"""A mixed-type latent-class model (experiment): each cluster a product of per-trait distributions.

Numbers (a date's days, an ordinal's rank; right-skewed non-negative ones logged, all standardized) are
Gaussian with a per-cluster mean and variance; categorical and boolean traits are per-cluster level
probabilities. A missing value adds no term to its row's likelihood (missing at random within a cluster), so
nothing is imputed. Fitted by EM from k-means++ starts; k chosen by BIC or ICL on fits to a sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import logsumexp
from sklearn.cluster import kmeans_plusplus

from persona_pipeline.core.traits import Trait
from quality_panel.methods import nearest, raw_numbers

VAR_FLOOR = 0.02  # per-cluster variance floor of a standardized number: no cluster collapses on one value
LEVEL_PRIOR = 0.5  # Dirichlet pseudo-count per level: a level unseen in a cluster is unlikely, not impossible
ITERATIONS = 150
TOLERANCE = 1e-5  # stop when the mean log-likelihood per row improves less than this
CHOOSE_SAMPLE = 6_000  # rows the fits that choose k see


@dataclass
class Encoded:
    numbers: np.ndarray  # (n, p) float64, standardized, 0 where missing
    observed: np.ndarray  # (n, p) float64, 1 where the number is present
    onehot: np.ndarray  # (n, L) float64, one column per level of every categorical trait, all 0 when missing
    blocks: list[slice]  # the columns of each categorical trait in onehot


def encode(frame: pd.DataFrame, traits: list[Trait]) -> Encoded:
    numbers, blocks, onehots = [], [], []
    width = 0
    for trait in traits:
        column = frame[trait.name]
        if trait.numeric_like:
            values = raw_numbers(trait, column)
            finite = np.isfinite(values)
            if finite.any() and np.nanmin(values) >= 0 and pd.Series(values[finite]).skew() > 1.5:
                values = np.log1p(values)
            mean, std = np.nanmean(values), np.nanstd(values) or 1.0
            numbers.append((values - mean) / std)
        else:
            codes = pd.Categorical(column.astype(object).where(column.notna(), None)).codes
            levels = int(codes.max()) + 1
            if levels < 2:
                continue
            block = np.zeros((len(frame), levels))
            present = codes >= 0
            block[np.flatnonzero(present), codes[present]] = 1.0
            onehots.append(block)
            blocks.append(slice(width, width + levels))
            width += levels
    raw = np.column_stack(numbers) if numbers else np.zeros((len(frame), 0))
    observed = np.isfinite(raw).astype(np.float64)
    return Encoded(
        numbers=np.where(observed > 0, raw, 0.0),
        observed=observed,
        onehot=np.hstack(onehots) if onehots else np.zeros((len(frame), 0)),
        blocks=blocks,
    )


@dataclass
class Fit:
    labels: np.ndarray  # (n,) int
    loglik: float  # total log-likelihood
    parameters: int
    entropy: float  # sum over rows of the posterior's entropy: how much the clusters overlap

    def bic(self, n: int) -> float:
        return -2.0 * self.loglik + self.parameters * np.log(n)

    def icl(self, n: int) -> float:
        """BIC plus twice the classification entropy: k whose clusters overlap heavily pay for it."""
        return self.bic(n) + 2.0 * self.entropy


def _log_joint(data: Encoded, log_weights, means, variances, log_levels) -> np.ndarray:
    """(n, k) log p(row, cluster)."""
    x, m = data.numbers, data.observed
    out = np.tile(log_weights, (len(x), 1))
    for c in range(len(log_weights)):
        z = (x - means[c]) ** 2 / variances[c] + np.log(2 * np.pi * variances[c])
        out[:, c] -= 0.5 * (z * m).sum(axis=1)
    if data.onehot.shape[1]:
        out += data.onehot @ log_levels.T
    return out


def _m_step(data: Encoded, resp: np.ndarray):
    weights = resp.sum(axis=0) + 1e-9
    x, m = data.numbers, data.observed
    seen = resp.T @ m + 1e-9  # (k, p)
    means = (resp.T @ x) / seen
    variances = np.maximum((resp.T @ (x**2)) / seen - means**2, VAR_FLOOR)
    counts = resp.T @ data.onehot + LEVEL_PRIOR  # (k, L)
    log_levels = np.empty_like(counts)
    for block in data.blocks:
        log_levels[:, block] = np.log(counts[:, block] / counts[:, block].sum(axis=1, keepdims=True))
    return np.log(weights / weights.sum()), means, variances, log_levels


def fit_once(data: Encoded, k: int, start: np.ndarray) -> Fit:
    resp = np.zeros((len(start), k))
    resp[np.arange(len(start)), start] = 1.0
    previous = -np.inf
    for _ in range(ITERATIONS):
        params = _m_step(data, resp)
        joint = _log_joint(data, *params)
        total = logsumexp(joint, axis=1)
        resp = np.exp(joint - total[:, None])
        mean = float(total.mean())
        if mean - previous < TOLERANCE:
            break
        previous = mean
    p = data.numbers.shape[1]
    levels = sum(b.stop - b.start - 1 for b in data.blocks)
    entropy = float(-(resp * np.log(np.maximum(resp, 1e-300))).sum())
    return Fit(resp.argmax(axis=1), float(total.sum()), (k - 1) + k * (2 * p + levels), entropy)


def fit(frame: pd.DataFrame, traits: list[Trait], seed: int, k: int, inits: int = 4, data=None) -> Fit:
    """The best of `inits` EM runs, each started from a k-means++ draw on [numbers, one-hot levels]."""
    data = data or encode(frame, traits)
    features = np.hstack([data.numbers, data.onehot * np.sqrt(0.5)])
    rng = np.random.default_rng(seed)
    best = None
    for _ in range(inits):
        centers, _ = kmeans_plusplus(features, k, random_state=int(rng.integers(2**31)))
        candidate = fit_once(data, k, nearest(features, centers))
        if best is None or candidate.loglik > best.loglik:
            best = candidate
    return best


def choose_k(frame: pd.DataFrame, traits: list[Trait], seed: int, ks=range(2, 11)) -> dict:
    """The fit per k on CHOOSE_SAMPLE rows: {k: Fit} (their .bic(n) and .icl(n) choose k)."""
    data = encode(frame, traits)
    rows = np.random.default_rng(seed).choice(len(frame), min(CHOOSE_SAMPLE, len(frame)), replace=False)
    small = Encoded(data.numbers[rows], data.observed[rows], data.onehot[rows], data.blocks)
    return {k: fit(frame, traits, seed, k, inits=2, data=small) for k in ks}
