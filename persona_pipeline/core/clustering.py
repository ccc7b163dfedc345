"""Choose the number of personas, fit them, keep their identities across rebuilds, and score stability.

How k is chosen (measured on the quality panel, benchmarks/quality.py, with thresholds chosen on its tuning
seeds): a marketer needs the finest segmentation that is real. Silhouette, Calinski-Harabasz and
Davies-Bouldin all pick 2 on overlapping segments, and so does the single best inertia elbow on real
customer tables (a low/high split). So: fit k = 2..K_MAX+2 on a sample; a k is a candidate when adding its
last persona gains clearly more than each further one does on average (an elbow: CLEAR_ELBOW times, and at
least RELATIVE_ELBOW of the clearest elbow), every persona holds at least MIN_SHARE of the sample,
and fits on two disjoint halves agree (split-half stability); the finest candidate wins. On data this rule
was not tuned on it finds the true k far less often than on our own generator: BENCHMARKS.md has the panel.
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

from persona_pipeline.core.domain import MIN_STABILITY
from persona_pipeline.core.parallel import in_parallel
from persona_pipeline.errors import ClusteringError

K_MIN, K_MAX = 2, 10  # the range the data chooses from; a user may ask for up to domain.MAX_PERSONAS
CHOOSE_SAMPLE = 20_000  # rows used to choose k: the elbow and stability settle well before this
FIT_SAMPLE = (
    100_000  # rows the final fit sees (ARI vs a full fit: see BENCHMARKS.md); then everyone is assigned
)
N_INIT = 2  # fresh inits per fit while choosing k (beside the fit grown from k-1)
N_INIT_STABILITY = 2  # per half: a half that lands in a poor local minimum reads as an unstable k
N_INIT_FINAL = 8  # the fit users get when they set k: its ARI must not depend on --seed (BENCHMARKS.md)
STABLE = MIN_STABILITY  # split-half adjusted Rand index a k needs to be a candidate
MIN_SHARE = 0.03  # a persona smaller than this share of the cohort is too small to act on
CLEAR_ELBOW = 1.75  # adding the k-th persona must gain this many times what each further one adds
# ... and its elbow must be at least this share of the clearest elbow of all: one noisy gain near K_MAX is no
# segment, and a base with two clear segments must not be split further by noise (tune split: 27% exact, 50%
# within one; leaving k=2 out of "clearest" gave 57% within one but split clean 2-segment bases into 4-6)
RELATIVE_ELBOW = 0.5
FLOOR_FITS = 2  # k fitted beyond the largest candidate: every elbow stands against at least 2 finer gains
REBUILD_SLACK = 0.9  # a rebuild keeps the previous k at 90% of each threshold (see choose_k)
KEEP_PREVIOUS = 0.995  # a fresh fit must beat the warm-started one by 0.5% inertia to replace it

Progress = Callable[[str], None]


def faraday_rule(cohort_size: int) -> int:
    """The public reference's rule, kept for comparison: floor(log10(n)) clamped to 2..8."""
    return int(min(8, max(K_MIN, math.floor(math.log10(max(cohort_size, 1))))))


@dataclass
class KChoice:
    k: int
    reason: str
    # per k: k, gain (share of the remaining spread the k-th persona explains), elbow (gain / mean finer gain),
    # smallest (smallest persona's share), stability (None: not needed to decide), verdict (why chosen or not)
    scores: list[dict[str, float | None]] = field(default_factory=list)
    centres: np.ndarray | None = None  # (k, d) the best fit found while choosing: where the final fit starts
    latent: Any = (
        None  # the latent_class.LatentClasses fitted at k while choosing (a start for the final fit)
    )


def sample_rows(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(n, size, replace=False)) if n > size else np.arange(n)


def _kmeans(k: int, seed: int, n_init: int = N_INIT, init: Any = "k-means++") -> KMeans:
    return KMeans(n_clusters=k, n_init=n_init if isinstance(init, str) else 1, init=init, random_state=seed)


def _grow(x: np.ndarray, smaller: KMeans | None, k: int, seed: int) -> KMeans:
    """The better of a fresh k-means++ fit and the (k-1) fit grown by one centre (the best of a few D²-drawn
    candidates): the inertia curve then falls as it should, and a lone bad local minimum cannot fake an elbow.

    x: (n, d); smaller: the fit with k-1 centres, or None. The two fits run side by side (core.parallel)."""
    if smaller is None:
        return _kmeans(k, seed).fit(x)

    def grown() -> KMeans:
        centres = smaller.cluster_centers_
        nearest = _nearest_squared(x, centres)
        rng = np.random.default_rng(seed + k)
        drawn = rng.choice(len(x), size=min(len(x), 2 + int(np.log(k) * 2)), p=nearest / nearest.sum())
        potential = [np.minimum(nearest, ((x - x[i]) ** 2).sum(axis=1)).sum() for i in drawn]
        init = np.vstack([centres, x[drawn[int(np.argmin(potential))]]])
        return _kmeans(k, seed, init=init).fit(x)

    fresh, grown_fit = in_parallel(lambda fit: fit(), [lambda: _kmeans(k, seed).fit(x), grown])
    return grown_fit if grown_fit.inertia_ < fresh.inertia_ else fresh


def _nearest_squared(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """(n,) squared distance of each row of x (n, d) to its nearest centre (k, d)."""
    d = (x**2).sum(axis=1)[:, None] - 2 * x @ centres.T + (centres**2).sum(axis=1)[None, :]
    return np.maximum(d.min(axis=1), 0).astype(np.float64)


def split_half_stability(x: np.ndarray, k: int, seed: int, start: np.ndarray | None = None) -> float:
    """Fit on two disjoint halves and compare how both label all rows: 1.0 means the same personas.

    x: (m, d). Each half keeps the better of fresh fits and, when given, a fit started from `start` (k, d), the
    best solution on all of x: a half that merely lands in a poor local minimum would otherwise read as an
    unstable k (it made a clear 6-segment base read 0.5 on one rebuild in three).
    """
    if len(x) < 4 * k:
        return 0.0
    rng = np.random.default_rng(seed + 7919)
    order = rng.permutation(len(x))
    half = len(x) // 2

    def labels(rows: np.ndarray, offset: int) -> np.ndarray:
        model = _kmeans(k, seed + offset, n_init=N_INIT_STABILITY).fit(x[rows])
        if start is not None:
            started = _kmeans(k, seed + offset, init=start).fit(x[rows])
            model = started if started.inertia_ < model.inertia_ else model
        return model.predict(x)

    first, second = in_parallel(lambda part: labels(*part), [(order[:half], 1), (order[half:], 2)])
    return float(adjusted_rand_score(first, second))


def stability_on_sample(x: np.ndarray, k: int, seed: int) -> float:
    """Split-half stability on the same kind of sample choose_k uses, for a k the user set."""
    return split_half_stability(x[sample_rows(len(x), CHOOSE_SAMPLE, np.random.default_rng(seed))], k, seed)


@dataclass(frozen=True)
class KRule:
    """The thresholds a k must pass to be a candidate (chosen on the quality panel's tuning seeds)."""

    clear_elbow: float = CLEAR_ELBOW
    relative_elbow: float = RELATIVE_ELBOW
    stable: float = STABLE
    min_share: float = MIN_SHARE
    rebuild_slack: float = REBUILD_SLACK


class KScores:
    """Per-k figures on one sample: gain, elbow and smallest persona at once, stability when first asked."""

    def __init__(self, sample: np.ndarray, seed: int, k_max: int) -> None:
        self.sample, self.seed = sample, seed  # sample: (m, d)
        inertia = {1: float(((sample - sample.mean(axis=0)) ** 2).sum())}
        smallest: dict[int, float] = {}
        fits: dict[int, KMeans] = {}
        for k in range(K_MIN, k_max + 1 + FLOOR_FITS):
            fits[k] = _grow(sample, fits.get(k - 1), k, seed)
            inertia[k] = float(fits[k].inertia_)
            smallest[k] = float(np.bincount(fits[k].labels_, minlength=k).min() / len(sample))
        self.fits = fits
        gains = {k: 1 - inertia[k] / inertia[k - 1] if inertia[k - 1] else 0.0 for k in fits}
        self.by_k: dict[int, dict[str, float | None]] = {
            k: {
                "k": k,
                "gain": gains[k],
                "elbow": _above_floor(gains[k], [gains[j] for j in fits if j > k]),
                "smallest": smallest[k],
                "stability": None,
            }
            for k in range(K_MIN, k_max + 1)
        }

    def stability(self, k: int) -> float:
        if self.by_k[k]["stability"] is None:
            start = self.fits[k].cluster_centers_
            self.by_k[k]["stability"] = split_half_stability(self.sample, k, self.seed, start)
        return float(self.by_k[k]["stability"])

    def measure_all(self) -> KScores:
        for k in self.by_k:
            self.stability(k)
        return self

    def verdict(self, k: int, rule: KRule, chosen: int) -> str:
        """Why k was or was not chosen, in the words of the first threshold it misses (the k table's column)."""
        score = self.by_k[k]
        clearest = max(s["elbow"] for s in self.by_k.values())
        if k == chosen:
            return "chosen"
        if score["elbow"] < rule.clear_elbow:
            return f"no elbow: gain under {rule.clear_elbow:g}x finer k"
        if score["elbow"] < rule.relative_elbow * clearest:
            return f"elbow under {rule.relative_elbow:.0%} of the clearest ({clearest:.1f}x)"
        if score["smallest"] < rule.min_share:
            return f"a persona under {rule.min_share:.0%}"
        if score["stability"] is None:
            return "passes gain and size; a finer k came first" if k < chosen else "not measured"
        if score["stability"] < rule.stable:
            return f"not reproducible: stability under {rule.stable:.2f}"
        return "a candidate; a finer one was chosen" if k < chosen else "a candidate"

    def candidate(self, k: int, rule: KRule, slack: float = 1.0) -> bool:
        score = self.by_k[k]
        clearest = max(s["elbow"] for s in self.by_k.values())
        return (
            score["elbow"] >= rule.clear_elbow**slack
            and score["elbow"] >= rule.relative_elbow * slack * clearest
            and score["smallest"] >= rule.min_share * slack
            and self.stability(k) >= rule.stable * slack
        )

    def still_holds(self, k: int, rule: KRule) -> bool:
        """A rebuild's test for the previous k: its personas are still reproducible and none is too small (at
        REBUILD_SLACK of each threshold). No elbow: how much one more persona explains moves with a few
        contacts (1.8 to 1.2 after 5% of a public table changed), while the personas stood."""
        score = self.by_k[k]
        return (
            score["smallest"] >= rule.min_share * rule.rebuild_slack
            and self.stability(k) >= rule.stable * rule.rebuild_slack
        )


def _above_floor(gain: float, finer: list[float]) -> float:
    """How many times the k-th persona's gain exceeds what each further persona adds on average: past the
    real segments, every further split only carves noise, and those gains form a floor. (Against the next
    gain alone, one noisy fit made elbows where there were none.)"""
    floor = float(np.mean(finer)) if finer else 0.0
    return gain / floor if floor > 1e-12 else float("inf")


def k_scores(x: np.ndarray, seed: int, k_max: int = K_MAX) -> KScores:
    """The figures choose_k decides on, for x (n, d), on a sample of CHOOSE_SAMPLE rows."""
    sample = x[sample_rows(len(x), CHOOSE_SAMPLE, np.random.default_rng(seed))]
    k_max = min(k_max, len(sample) // 10 - FLOOR_FITS)
    if k_max < K_MIN:
        raise ClusteringError(
            f"the cohort has {len(x)} contacts: too few to split into {K_MIN} personas reliably"
        )
    return KScores(sample, seed, k_max)


def pick_k(scores: KScores, rule: KRule = KRule(), previous_k: int | None = None) -> KChoice:
    """The finest candidate k (see the module docstring); stability is measured finest candidate first, so
    only as many k as needed pay for it. With `previous_k` (a rebuild), that k is kept while its personas
    still hold (KScores.still_holds), even when another k became a candidate: a threshold crossed by noise must
    not reshuffle personas (5% of contacts changed moved k from 5 to 8 on a public table, and half the
    unchanged contacts with it); the reason names the other k for a user who wants it."""
    by_k = scores.by_k

    def choice(k: int, reason: str) -> KChoice:
        table = [{**score, "verdict": scores.verdict(j, rule, k)} for j, score in by_k.items()]
        return KChoice(k, reason, table, scores.fits[k].cluster_centers_)

    best = next((k for k in sorted(by_k, reverse=True) if scores.candidate(k, rule)), None)
    if previous_k in by_k and scores.still_holds(previous_k, rule):
        score = by_k[previous_k]
        return choice(previous_k, kept_reason(previous_k, score["stability"], score["smallest"], best))
    if best is not None:
        return choice(best, _why(best, by_k[best]))
    sized = [k for k in by_k if by_k[k]["smallest"] >= rule.min_share] or [K_MIN]
    best = max(sized, key=lambda k: (round(scores.stability(k), 2), k))
    return choice(
        best,
        f"no k from {K_MIN} to {max(by_k)} is both a clear elbow and stable; k={best} is the most stable "
        f"(split-half {scores.stability(best):.2f}) with every persona at least {rule.min_share:.0%}",
    )


def choose_k(
    x: np.ndarray, seed: int, progress: Progress | None = None, previous_k: int | None = None
) -> KChoice:
    """The finest k that is an elbow, leaves no persona under MIN_SHARE and is split-half stable; x: (n, d)."""
    scores = k_scores(x, seed)
    if progress:
        progress(
            f"choosing k from {K_MIN} to {K_MAX}: fitted k={K_MIN}..{max(scores.fits)} on {len(scores.sample):,} "
            "contacts (the finer fits measure the last candidates' gains); measuring stability"
        )
    return pick_k(scores, KRule(), previous_k)


def kept_reason(k: int, stability: float, smallest: float, best: int | None) -> str:
    """Why a rebuild kept its k (both methods' rules), and the k the data alone would take instead, if another."""
    other = (
        f"; the data alone would now choose k={best} (--personas {best} takes it)"
        if best not in (None, k)
        else ""
    )
    return (
        f"kept from the previous build: its {k} personas still hold (split-half stability {stability:.2f}, "
        f"smallest persona {smallest:.1%}){other}"
    )


def _why(k: int, score: dict[str, float | None]) -> str:
    return (
        f"the finest k whose personas are reproducible: k={k} explains {score['gain']:.1%} more of the "
        f"spread ({score['elbow']:.1f}x what each further persona adds), split-half stability "
        f"{score['stability']:.2f}, smallest persona {score['smallest']:.1%}"
    )


AMBIGUOUS_GAP = 1e-4  # relative to the squared norms: far above float32's rounding in the distance expansion


def block_sums(rows: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """(n,) float64: sum over the block's features, left to right from zero, of (x - c)^2.

    rows: (n, w) float32 features of one trait; centre: (w,) that trait's part of a centroid (float32 values).
    """
    values = rows.astype(np.float32, copy=False).astype(np.float64)
    centre = np.asarray(centre, dtype=np.float32).astype(np.float64)
    total = np.zeros(len(values), dtype=np.float64)
    for j in range(values.shape[1]):
        gap = values[:, j] - centre[j]
        total = total + gap * gap
    return total


def exact_distances(x: np.ndarray, centroids: np.ndarray, widths: list[int] | None = None) -> np.ndarray:
    """(n, k) float64 squared distances of float32 rows to float32 centroids: each trait's block of features
    summed from zero (block_sums), the blocks added left to right. The warehouse repeats this arithmetic
    (core/sql_scoring.py), so both agree to the last bit.

    x: (n, f) features; centroids: (k, f); widths: features per trait (None: one each).
    """
    widths = widths or [1] * x.shape[1]
    out = np.zeros((len(x), len(centroids)), dtype=np.float64)
    for i, centre in enumerate(centroids):
        total = np.zeros(len(x), dtype=np.float64)
        col = 0
        for width in widths:
            total = total + block_sums(x[:, col : col + width], centre[col : col + width])
            col += width
        out[:, i] = total
    return out


def nearest_two(
    x: np.ndarray, centroids: np.ndarray, chunk: int = 262_144, widths: list[int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest centroid and a confidence in [0, 1]: 1 - d_nearest / d_second (squared).

    Distances come from one float32 matrix product (fast); where the two nearest are too close to tell apart
    at that precision, the row is decided on `exact_distances` instead, the lowest index winning a tie, so
    the assignment is the same as the warehouse's (core/sql_scoring.py) for every row.
    """
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
        scale = (block**2).sum(axis=1) + c_norm.max() + 1
        close = np.flatnonzero(d2 - d1 <= AMBIGUOUS_GAP * scale)
        if close.size:
            exact = exact_distances(block[close], c, widths)
            nearest = exact.argmin(axis=1)  # the first minimum: the lowest index on a tie
            ranked = np.sort(exact, axis=1)
            labels[start + close] = nearest
            confidence[start + close] = np.where(
                ranked[:, 1] > 0, 1 - ranked[:, 0] / np.where(ranked[:, 1] > 0, ranked[:, 1], 1), 1.0
            )
    return labels, confidence


def id_positions(ids: np.ndarray, persona_ids: list[int]) -> np.ndarray:
    """(n,) int64 position of each row's persona id (n,) in persona_ids; -1 for 0 (the contact was not in that
    build) or an id not among them."""
    lookup = np.full(max(persona_ids, default=0) + 1, -1, dtype=np.int64)
    lookup[np.asarray(persona_ids, dtype=np.int64)] = np.arange(len(persona_ids))
    known = (ids > 0) & (ids < len(lookup))
    out = np.full(len(ids), -1, dtype=np.int64)
    out[known] = lookup[ids[known]]
    return out


def match_identities(
    new_labels: np.ndarray, old_ids: np.ndarray, k_new: int, previous_ids: list[int]
) -> list[int]:
    """Persona ids for the new clusters: the previous build's id with the largest shared membership (Hungarian).

    new_labels: (n,) cluster index; old_ids: (n,) the persona id each contact had, 0 when it was not there."""
    old_index = id_positions(old_ids, previous_ids)
    matched = old_index >= 0
    overlap = np.zeros((k_new, len(previous_ids)), dtype=np.int64)
    np.add.at(overlap, (new_labels[matched], old_index[matched]), 1)
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
    start: np.ndarray | None = None,
) -> FitResult:
    """Fit k personas on a sample, assign every row; with a previous build, start from its personas and keep ids."""
    if len(x) < k:
        raise ClusteringError(
            f"the cohort has {len(x)} valid contacts but {k} personas were asked for; ask for at most {len(x)}"
        )
    rng = np.random.default_rng(seed)
    sample_index = sample_rows(len(x), FIT_SAMPLE, rng)
    sample = x[sample_index]
    if start is not None and start.shape[0] == k:  # k was chosen: start where choosing found the best fit
        model = _kmeans(k, seed, init=start).fit(sample)
        fresh = _kmeans(k, seed).fit(sample)
        model = fresh if fresh.inertia_ < model.inertia_ else model
    else:
        model = _kmeans(k, seed, n_init=N_INIT_FINAL).fit(sample)
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
    ids = number_personas(labels, k, previous_labels, previous_ids)
    return FitResult(model.cluster_centers_, ids, labels, confidence, float(model.inertia_), warm)


def number_personas(
    labels: np.ndarray, k: int, previous_labels: np.ndarray | None, previous_ids: list[int] | None
) -> list[int]:
    """Persona ids for clusters 0..k-1 of labels (n,): the previous build's where they match
    (match_identities), else by size, largest first."""
    if previous_labels is not None and previous_ids:
        return match_identities(labels, previous_labels, k, list(previous_ids))
    sizes = np.bincount(labels, minlength=k)
    ids = [0] * k
    for rank, cluster in enumerate(np.argsort(-sizes, kind="stable")):
        ids[cluster] = rank + 1
    return ids
