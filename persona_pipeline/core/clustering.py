"""Choose the number of personas, fit them, keep their identities across rebuilds, and score stability.

How k is chosen (measured in benchmarks/choose_k.py against the generator's hidden segments): silhouette,
Calinski-Harabasz and Davies-Bouldin all pick 2 on overlapping segments; the inertia elbow and split-half
stability both point at the truth. So: fit k = 1..9 on a sample, find the k after which the relative inertia
gain collapses (the elbow), among the k whose split-half stability is high enough.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from persona_pipeline.errors import ClusteringError

K_MIN, K_MAX = 2, 8
CHOOSE_SAMPLE = 20_000  # rows used to choose k: the elbow and stability settle well before this
FIT_SAMPLE = (
    100_000  # rows the final fit sees (ARI vs a full fit: see BENCHMARKS.md); then everyone is assigned
)
N_INIT = 3  # one init lands in a worse local minimum about one time in three on overlapping segments
STABLE = 0.8  # split-half adjusted Rand index a k needs to be a candidate
CLEAR_ELBOW = 1.3  # a gain ratio below this is no elbow: fall back to the largest stable k
KEEP_K_ELBOW_SHARE = 0.75  # a rebuild keeps the previous k while its elbow is at least this share of the best
KEEP_PREVIOUS = 0.995  # a fresh fit must beat the warm-started one by 0.5% inertia to replace it

Progress = Callable[[str], None]


def faraday_rule(cohort_size: int) -> int:
    """The public reference's rule, kept for comparison: floor(log10(n)) clamped to 2..8."""
    return int(min(K_MAX, max(K_MIN, math.floor(math.log10(max(cohort_size, 1))))))


@dataclass
class KChoice:
    k: int
    reason: str
    scores: list[dict[str, float | None]] = field(default_factory=list)  # stability None: not needed


def _sample(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(n, size, replace=False)) if n > size else np.arange(n)


def _kmeans(k: int, seed: int, n_init: int = N_INIT, init: Any = "k-means++") -> KMeans:
    return KMeans(n_clusters=k, n_init=n_init if isinstance(init, str) else 1, init=init, random_state=seed)


def split_half_stability(x: np.ndarray, k: int, seed: int) -> float:
    """Fit on two disjoint halves and compare how both label all rows: 1.0 means the same personas."""
    if len(x) < 4 * k:
        return 0.0
    rng = np.random.default_rng(seed + 7919)
    order = rng.permutation(len(x))
    half = len(x) // 2
    first = _kmeans(k, seed + 1, n_init=2 * N_INIT).fit(x[order[:half]]).predict(x)
    second = _kmeans(k, seed + 2, n_init=2 * N_INIT).fit(x[order[half:]]).predict(x)
    return float(adjusted_rand_score(first, second))


def stability_on_sample(x: np.ndarray, k: int, seed: int) -> float:
    """Split-half stability on the same kind of sample choose_k uses, for a k the user set."""
    return split_half_stability(x[_sample(len(x), CHOOSE_SAMPLE, np.random.default_rng(seed))], k, seed)


def choose_k(
    x: np.ndarray, seed: int, progress: Progress | None = None, previous_k: int | None = None
) -> KChoice:
    """The k after which the inertia gain collapses, among split-half-stable k (see the module docstring).

    Stability costs two fits per k, so it is measured lazily, best elbow first: the answer is the same as
    measuring every k. With `previous_k` (a rebuild), that k is kept while it is stable and its elbow is at
    least KEEP_K_ELBOW_SHARE of the best: personas should not reshuffle over a near tie.
    """
    rng = np.random.default_rng(seed)
    sample = x[_sample(len(x), CHOOSE_SAMPLE, rng)]
    k_max = min(K_MAX, len(sample) // 10)
    if k_max < K_MIN:
        raise ClusteringError(
            f"the cohort has {len(x)} contacts: too few to split into {K_MIN} personas reliably"
        )
    inertia = {1: float(((sample - sample.mean(axis=0)) ** 2).sum())}
    for k in range(K_MIN, k_max + 2):
        inertia[k] = float(_kmeans(k, seed).fit(sample).inertia_) if k <= len(sample) else 0.0
    if progress:
        progress(
            f"choosing k: fitted k={K_MIN}..{k_max + 1} on {len(sample):,} contacts; measuring stability"
        )
    gains = {k: 1 - inertia[k] / inertia[k - 1] if inertia[k - 1] else 0.0 for k in range(K_MIN, k_max + 2)}
    scores = {
        k: {
            "k": k,
            "inertia": inertia[k],
            "gain": gains[k],
            "elbow": gains[k] / gains[k + 1] if gains[k + 1] > 1e-12 else float("inf"),
            "stability": None,
        }
        for k in range(K_MIN, k_max + 1)
    }

    def stability(k: int) -> float:
        if scores[k]["stability"] is None:
            scores[k]["stability"] = split_half_stability(sample, k, seed)
        return scores[k]["stability"]

    def choice(k: int, reason: str) -> KChoice:
        return KChoice(k, reason, list(scores.values()))

    by_elbow = sorted(scores, key=lambda k: (-scores[k]["elbow"], k))
    best = next((k for k in by_elbow if stability(k) >= STABLE), None)
    if best is None:  # nothing is stable: the most stable k
        best = max(scores, key=lambda k: (scores[k]["stability"], -k))
        return choice(best, f"no stable k; the most stable is k={best} (stability {stability(best):.2f})")
    if scores[best]["elbow"] < CLEAR_ELBOW:
        best = next(k for k in sorted(scores, reverse=True) if stability(k) >= STABLE)
        return choice(best, f"no clear elbow; largest stable k (stability {stability(best):.2f})")
    if (
        previous_k in scores
        and previous_k != best
        and scores[previous_k]["elbow"] >= KEEP_K_ELBOW_SHARE * scores[best]["elbow"]
        and stability(previous_k) >= STABLE
    ):
        return choice(
            previous_k, f"kept k={previous_k} from the previous build (close to the best, k={best})"
        )
    return choice(
        best,
        f"inertia elbow at k={best} (gain falls {scores[best]['elbow']:.1f}x after it), "
        f"split-half stability {stability(best):.2f}",
    )


def nearest_two(x: np.ndarray, centroids: np.ndarray, chunk: int = 262_144) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest centroid and a confidence in [0, 1]: 1 - d_nearest / d_second (squared)."""
    labels = np.empty(len(x), dtype=np.int32)
    confidence = np.empty(len(x), dtype=np.float32)
    c = centroids.astype(np.float32)
    c_norm = (c**2).sum(axis=1)
    for start in range(0, len(x), chunk):
        block = x[start : start + chunk].astype(np.float32, copy=False)
        d = np.maximum((block**2).sum(axis=1)[:, None] - 2 * block @ c.T + c_norm[None, :], 0)
        if c.shape[0] == 1:
            labels[start : start + len(block)] = 0
            confidence[start : start + len(block)] = 1.0
            continue
        two = np.argpartition(d, 1, axis=1)[:, :2]
        d_two = np.take_along_axis(d, two, axis=1)
        swap = d_two[:, 0] > d_two[:, 1]
        first = np.where(swap, two[:, 1], two[:, 0])
        d1 = np.minimum(d_two[:, 0], d_two[:, 1])
        d2 = np.maximum(d_two[:, 0], d_two[:, 1])
        labels[start : start + len(block)] = first
        confidence[start : start + len(block)] = np.where(d2 > 0, 1 - d1 / np.where(d2 > 0, d2, 1), 1.0)
    return labels, confidence


def match_identities(
    new_labels: np.ndarray, old_ids: np.ndarray, k_new: int, previous_ids: list[int]
) -> list[int]:
    """Persona ids for the new clusters: the previous build's id with the largest shared membership (Hungarian).

    new_labels: (n,) cluster index; old_ids: (n,) the persona id each contact had, 0 when it was not there."""
    lookup = np.full(max(previous_ids, default=0) + 1, -1, dtype=np.int64)
    lookup[np.asarray(previous_ids, dtype=np.int64)] = np.arange(len(previous_ids))
    known = (old_ids > 0) & (old_ids < len(lookup))  # 0: the contact was not in the previous build
    old_index = lookup[old_ids[known]]
    matched = old_index >= 0
    overlap = np.zeros((k_new, len(previous_ids)), dtype=np.int64)
    np.add.at(overlap, (new_labels[known][matched], old_index[matched]), 1)
    rows, cols = linear_sum_assignment(-overlap)
    ids = [0] * k_new
    for r, c in zip(rows, cols, strict=True):
        ids[r] = previous_ids[c]
    next_id = max(previous_ids, default=0) + 1
    for r in range(k_new):
        if ids[r] == 0:
            ids[r], next_id = next_id, next_id + 1
    return ids


@dataclass
class FitResult:
    centroids: np.ndarray  # rows in persona order
    persona_ids: list[int]
    labels: np.ndarray  # index into centroids, per row of x
    confidence: np.ndarray
    inertia: float
    warm_started: bool


def fit(
    x: np.ndarray,
    k: int,
    seed: int,
    previous_labels: np.ndarray | None = None,
    previous_ids: list[int] | None = None,
) -> FitResult:
    """Fit k personas on a sample, assign every row; with a previous build, start from its personas and keep ids."""
    if len(x) < k:
        raise ClusteringError(
            f"the cohort has {len(x)} valid contacts but {k} personas were asked for; ask for at most {len(x)}"
        )
    rng = np.random.default_rng(seed)
    sample_index = _sample(len(x), FIT_SAMPLE, rng)
    sample = x[sample_index]
    model = _kmeans(k, seed).fit(sample)
    warm = False
    if previous_labels is not None and previous_ids is not None and len(previous_ids) == k:
        prev_sample = previous_labels[sample_index]
        present = [pid for pid in previous_ids if (prev_sample == pid).any()]
        if len(present) == k:
            init = np.vstack([sample[prev_sample == pid].mean(axis=0) for pid in previous_ids])
            warm_model = _kmeans(k, seed, init=init).fit(sample)
            if model.inertia_ >= KEEP_PREVIOUS * warm_model.inertia_:
                model, warm = warm_model, True
    labels, confidence = nearest_two(x, model.cluster_centers_)
    if previous_labels is not None and previous_ids:
        ids = match_identities(labels, previous_labels, k, list(previous_ids))
    else:  # a first build numbers personas by size, largest first
        sizes = np.bincount(labels, minlength=k)
        ids = [0] * k
        for rank, cluster in enumerate(np.argsort(-sizes, kind="stable")):
            ids[cluster] = rank + 1
    return FitResult(model.cluster_centers_, ids, labels, confidence, float(model.inertia_), warm)
