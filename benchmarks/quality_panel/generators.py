"""Customer bases with a known segmentation, built unlike persona_pipeline/core/synthetic.py on purpose.

The project's own generator is one hand-written table of segments; a k rule or a method tuned on it can
overfit its shapes. Each family here draws its segments at random from the case seed, so a panel of seeds
covers 3 to 8 segments, imbalanced sizes, weak and strong overlap, noise-only traits, heavy-tailed money,
a 50-level categorical, missing values at random and depending on other traits, a mostly categorical and
a mostly numeric base, booleans, ordinals and a date.

Every family is `family(n, seed, true_k, overlap) -> Generated`: `overlap` in [0, 1] (0: segments far apart,
1: mostly on top of each other; what it scales is family-specific). Segment sizes are exact (largest
remainder), so a case's sizes and missing shares are the declared ones, not draws around them.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import expit, logit
from scipy.stats import ortho_group

from persona_pipeline.core.traits import Trait, TraitKind

SHARE_MIN, SHARE_MAX = 0.03, 0.40  # every segment's share of the contacts, in every family
MISSING_MAX = 0.20  # no trait is missing for more than this share of contacts
K_RANGE = (3, 8)  # true number of segments a case may have
N_RANGE = (12_000, 30_000)  # contacts in a reporting-size case
REFERENCE = "2026-01-01"  # the date trait's "days before" day: fixed, so features do not depend on the draw


@dataclass(frozen=True)
class CaseSpec:
    """What a generated case is: drawn from (family, seed) alone, so a seed names the same case forever."""

    family: str
    seed: int
    true_k: int
    overlap: float  # 0..1, see the module docstring
    n: int

    @property
    def overlap_label(self) -> str:
        return "weak" if self.overlap < 0.5 else "strong"


@dataclass
class Generated:
    frame: pd.DataFrame  # (n, traits) one column per trait, pandas dtypes as a load produces them
    traits: list[Trait]
    truth: np.ndarray  # (n,) int in 0..true_k-1: each contact's hidden segment
    shares: np.ndarray  # (true_k,) declared share of each segment, sums to 1
    missing: dict[str, float] = field(default_factory=dict)  # trait -> declared share missing
    noise: tuple[str, ...] = ()  # traits drawn the same way in every segment
    mar: tuple[str, ...] = ()  # traits whose missingness depends on another trait

    @property
    def true_k(self) -> int:
        return len(self.shares)


# ---- shared pieces -------------------------------------------------------------------------------------


def family_rng(family: str, seed: int, stream: int = 0) -> np.random.Generator:
    """One generator per (family, seed, stream): the same seed gives different data in two families."""
    return np.random.default_rng([seed, zlib.crc32(family.encode()), stream])


def bounded_shares(raw: np.ndarray, lo: float = SHARE_MIN, hi: float = SHARE_MAX) -> np.ndarray:
    """(k,) shares proportional to `raw` as far as the bounds allow: clip, then spread the gap over the rest."""
    k = len(raw)
    if k * lo > 1 + 1e-12 or k * hi < 1 - 1e-12:
        raise ValueError(f"{k} segments cannot all have shares in [{lo}, {hi}]")
    p = np.asarray(raw, dtype=float) / np.sum(raw)
    for _ in range(200):
        p = np.clip(p, lo, hi)
        gap = 1.0 - p.sum()
        if abs(gap) < 1e-12:
            break
        free = p < hi if gap > 0 else p > lo
        p[free] += gap * p[free] / p[free].sum()
    return p


def exact_labels(rng: np.random.Generator, n: int, shares: np.ndarray) -> np.ndarray:
    """(n,) segment labels with exactly round(share * n) of each (largest remainder), in random order."""
    counts = np.floor(shares * n).astype(int)
    remainder = shares * n - counts
    counts[np.argsort(-remainder, kind="stable")[: n - counts.sum()]] += 1
    return rng.permutation(np.repeat(np.arange(len(shares)), counts))


def spaced_means(rng: np.random.Generator, k: int, dims: int, min_distance: float) -> np.ndarray:
    """(k, dims) random segment centers scaled so that the closest two are `min_distance` apart."""
    means = rng.normal(size=(k, dims))
    gaps = np.linalg.norm(means[:, None, :] - means[None, :, :], axis=2)
    closest = gaps[np.triu_indices(k, 1)].min()
    return means * (min_distance / closest)


def draw_codes(rng: np.random.Generator, probs: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(n,) level index per contact from its segment's row of `probs` ((k, levels), rows sum to 1)."""
    cdf = np.cumsum(probs, axis=1)[truth]
    cdf[:, -1] = 1.0  # rounding must never leave a draw past the last level
    return (rng.random(len(truth))[:, None] > cdf).sum(axis=1)


def segment_profiles(
    rng: np.random.Generator, k: int, levels: int, separation: float, alpha: float
) -> np.ndarray:
    """(k, levels) level probabilities: a shared profile moved `separation` (0..1) toward each segment's own."""
    common = rng.dirichlet(np.full(levels, 2.0))
    own = rng.dirichlet(np.full(levels, alpha), size=k)
    return (1 - separation) * common + separation * own


def categorical(codes: np.ndarray, levels: list[str]) -> pd.Series:
    """Level indices (-1: missing) as a pandas category column, as the loader hands text traits over."""
    return pd.Series(pd.Categorical.from_codes(codes, categories=levels))


def boolean(values: np.ndarray) -> pd.Series:
    return pd.Series(pd.array(values.astype(bool), dtype="boolean"))


def blank(
    rng: np.random.Generator, series: pd.Series, share: float, weights: np.ndarray | None = None
) -> pd.Series:
    """The column with exactly round(share * n) values removed: uniformly (MCAR) or in proportion to `weights`
    ((n,) positive; missing at random given another trait, MAR)."""
    n = len(series)
    count = int(round(share * n))
    if count == 0:
        return series
    p = None if weights is None else weights / weights.sum()
    rows = rng.choice(n, count, replace=False, p=p)
    out = series.copy()
    out.iloc[rows] = None  # NaN, NaT or <NA>, whichever the column's dtype uses
    return out


def _numeric(name: str) -> Trait:
    return Trait(name, TraitKind.NUMERIC)


def _categorical(name: str, levels: list[str]) -> Trait:
    return Trait(name, TraitKind.CATEGORICAL, levels=tuple(levels))


def _ordinal(name: str, levels: list[str]) -> Trait:
    return Trait(name, TraitKind.ORDINAL, levels=tuple(levels))


def _boolean(name: str) -> Trait:
    return Trait(name, TraitKind.BOOLEAN)


def _separation(overlap: float) -> float:
    """0..1 overlap to a 1..0.5 strength of the segments' differences (on tuning seeds, 0.5 leaves the supervised
    ceiling near ARI 0.5: hard, but a truth still there to find)."""
    return 1.0 - 0.5 * overlap


def _finish(
    columns: dict[str, pd.Series],
    traits: list[Trait],
    truth: np.ndarray,
    shares: np.ndarray,
    missing: dict[str, float],
    noise: tuple[str, ...] = (),
    mar: tuple[str, ...] = (),
) -> Generated:
    frame = pd.DataFrame({name: column.reset_index(drop=True) for name, column in columns.items()})
    return Generated(frame, traits, truth.astype(np.int64), shares, missing, noise, mar)


# ---- the families ----------------------------------------------------------------------------------------


def gaussian_mixture(n: int, seed: int, true_k: int, overlap: float) -> Generated:
    """Mostly numeric: Gaussian segments with random full covariances, plus noise-only traits and MCAR gaps.

    Overlap sets the distance between the two closest segment centers (6 within-segment sds at 0, 1.5 at 1);
    the noise traits (numeric, one boolean, one categorical) dilute every distance equally.
    """
    rng = family_rng("gaussian", seed)
    shares = bounded_shares(rng.dirichlet(np.full(true_k, 3.0)), 0.05, SHARE_MAX)
    truth = exact_labels(rng, n, shares)
    dims = int(rng.integers(5, 10))
    means = spaced_means(rng, true_k, dims, 1.5 + 4.5 * (1 - overlap))
    x = np.empty((n, dims))
    for s in range(true_k):
        rows = truth == s
        rotation = ortho_group.rvs(dims, random_state=rng) if dims > 1 else np.ones((1, 1))
        scale = np.sqrt(rng.uniform(0.3, 1.5, size=dims))
        x[rows] = means[s] + (rng.normal(size=(rows.sum(), dims)) * scale) @ rotation.T
    columns: dict[str, pd.Series] = {}
    traits: list[Trait] = []
    offsets = rng.uniform(20, 80, size=dims)  # scores on a customer-like scale, not centered at zero
    spreads = rng.uniform(3, 15, size=dims)
    for j in range(dims):
        name = f"score_{j + 1}"
        columns[name] = pd.Series(offsets[j] + spreads[j] * x[:, j])
        traits.append(_numeric(name))
    noise = []
    for j in range(int(rng.integers(3, 7))):
        name = f"noise_{j + 1}"
        columns[name] = pd.Series(rng.normal(50, 10, size=n) if j % 2 == 0 else rng.uniform(0, 100, size=n))
        traits.append(_numeric(name))
        noise.append(name)
    columns["noise_flag"] = boolean(rng.random(n) < 0.3)
    traits.append(_boolean("noise_flag"))
    levels = [f"kind_{i}" for i in range(5)]
    columns["noise_kind"] = categorical(rng.choice(5, n, p=rng.dirichlet(np.full(5, 2.0))), levels)
    traits.append(_categorical("noise_kind", levels))
    noise += ["noise_flag", "noise_kind"]
    missing = {}
    for name in columns:
        share = float(rng.choice([0.0, rng.uniform(0.0, 0.10)]))
        columns[name] = blank(rng, columns[name], share)
        missing[name] = round(share * n) / n
    return _finish(columns, traits, truth, shares, missing, tuple(noise))


def latent_class(n: int, seed: int, true_k: int, overlap: float) -> Generated:
    """Mostly categorical and boolean (a latent-class model): each segment has its own level probabilities.

    Overlap pulls every segment's profile toward one shared profile; two categoricals and a boolean are noise.
    One numeric (age) and one ordinal keep it from being purely categorical.
    """
    rng = family_rng("latent_class", seed)
    shares = bounded_shares(rng.dirichlet(np.full(true_k, 2.0)), 0.04, SHARE_MAX)
    truth = exact_labels(rng, n, shares)
    separation = _separation(overlap)
    columns: dict[str, pd.Series] = {}
    traits: list[Trait] = []
    for j in range(int(rng.integers(8, 13))):
        name = f"answer_{j + 1}"
        count = int(rng.integers(3, 8))
        levels = [f"option_{chr(97 + i)}" for i in range(count)]
        probs = segment_profiles(rng, true_k, count, separation, alpha=0.5)
        columns[name] = categorical(draw_codes(rng, probs, truth), levels)
        traits.append(_categorical(name, levels))
    for j in range(int(rng.integers(4, 7))):
        name = f"owns_{j + 1}"
        base = logit(rng.uniform(0.15, 0.6))
        p = expit(base + separation * rng.normal(0, 2.0, size=true_k))
        columns[name] = boolean(rng.random(n) < p[truth])
        traits.append(_boolean(name))
    levels = ["1", "2", "3", "4", "5"]
    columns["satisfaction"] = categorical(
        draw_codes(rng, segment_profiles(rng, true_k, 5, separation, alpha=0.7), truth), levels
    )
    traits.append(_ordinal("satisfaction", levels))
    age_means = 45 + separation * rng.uniform(-18, 18, size=true_k)
    columns["age"] = pd.Series(np.clip(rng.normal(age_means[truth], 11), 18, 95).round())
    traits.append(_numeric("age"))
    noise = []
    for j, count in enumerate((4, 6)):
        name = f"noise_pick_{j + 1}"
        levels = [f"pick_{i}" for i in range(count)]
        columns[name] = categorical(rng.choice(count, n, p=rng.dirichlet(np.full(count, 2.0))), levels)
        traits.append(_categorical(name, levels))
        noise.append(name)
    columns["noise_opt_in"] = boolean(rng.random(n) < 0.5)
    traits.append(_boolean("noise_opt_in"))
    noise.append("noise_opt_in")
    missing = {}
    for name in columns:
        share = float(rng.choice([0.0, 0.0, rng.uniform(0.02, 0.12)]))
        columns[name] = blank(rng, columns[name], share)
        missing[name] = round(share * n) / n
    return _finish(columns, traits, truth, shares, missing, tuple(noise))


STORES = [f"store_{i:02d}" for i in range(1, 51)]
CHANNELS = ["web", "app", "in_store", "phone"]


def mixed_money(n: int, seed: int, true_k: int, overlap: float) -> Generated:
    """Mixed types with heavy tails: lognormal spend, Pareto income, negative-binomial order counts, a date,
    a 50-level store, booleans; income and store missing depending on age and on the app flag (MAR).

    Overlap shrinks every segment's parameters toward the shared ones.
    """
    rng = family_rng("mixed_money", seed)
    shares = bounded_shares(rng.dirichlet(np.full(true_k, 2.5)), 0.04, SHARE_MAX)
    truth = exact_labels(rng, n, shares)
    s = 1.25 * _separation(overlap)  # heavy tails hide more of a difference than the other families' traits
    ages = np.clip(rng.normal((45 + s * rng.uniform(-20, 20, true_k))[truth], 9), 18, 95).round()
    spend_log = np.log(800) + s * rng.normal(0, 1.1, true_k)
    spend = np.exp(rng.normal(spend_log[truth], rng.uniform(0.6, 0.9)))
    income_scale = 30_000 * np.exp(s * rng.normal(0, 0.6, true_k))
    income = income_scale[truth] * (1 + rng.pareto(2.2, n))
    order_mean = np.exp(np.log(4) + s * rng.normal(0, 0.9, true_k))
    orders = rng.negative_binomial(2, 2 / (2 + order_mean[truth])).astype(float)
    days_mean = np.exp(np.log(60) + s * rng.normal(0, 1.0, true_k))
    days = np.minimum(rng.exponential(days_mean[truth]), 3 * 365).round()
    last_order = pd.Series(pd.Timestamp(REFERENCE) - pd.to_timedelta(days, unit="D"))
    store = draw_codes(rng, segment_profiles(rng, true_k, len(STORES), s, alpha=0.15), truth)
    channel = draw_codes(rng, segment_profiles(rng, true_k, len(CHANNELS), s, alpha=0.6), truth)
    has_app = rng.random(n) < expit(logit(0.4) + s * rng.normal(0, 1.8, true_k))[truth]
    columns: dict[str, pd.Series] = {
        "age": pd.Series(ages),
        "annual_spend": pd.Series(spend.round(2)),
        "income": pd.Series(income.round(-2)),
        "orders_per_year": pd.Series(orders),
        "last_order": last_order,
        "store": categorical(store, STORES),
        "channel": categorical(channel, CHANNELS),
        "has_app": boolean(has_app),
    }
    traits = [
        _numeric("age"),
        _numeric("annual_spend"),
        _numeric("income"),
        _numeric("orders_per_year"),
        Trait("last_order", TraitKind.DATE, reference=REFERENCE),
        _categorical("store", STORES),
        _categorical("channel", CHANNELS),
        _boolean("has_app"),
    ]
    for name in ("newsletter", "loyalty_member"):
        columns[name] = boolean(rng.random(n) < expit(logit(0.35) + s * rng.normal(0, 1.5, true_k))[truth])
        traits.append(_boolean(name))
    columns["noise_survey"] = pd.Series(rng.integers(0, 11, n).astype(float))
    columns["noise_referred"] = boolean(rng.random(n) < 0.2)
    traits += [_numeric("noise_survey"), _boolean("noise_referred")]
    missing = {name: 0.0 for name in columns}
    # MAR: older contacts leave income blank more often; contacts without the app never told us their store
    age_z = (ages - ages.mean()) / ages.std()
    missing["income"] = float(rng.uniform(0.10, MISSING_MAX))
    columns["income"] = blank(rng, columns["income"], missing["income"], np.exp(1.2 * age_z))
    missing["store"] = float(rng.uniform(0.05, 0.15))
    columns["store"] = blank(rng, columns["store"], missing["store"], np.where(has_app, 1.0, 5.0))
    for name in ("age", "annual_spend", "channel", "newsletter"):  # and a few gaps at random
        missing[name] = float(rng.uniform(0.0, 0.05))
        columns[name] = blank(rng, columns[name], missing[name])
    missing = {name: round(share * n) / n for name, share in missing.items()}
    return _finish(
        columns, traits, truth, shares, missing, ("noise_survey", "noise_referred"), ("income", "store")
    )


TIERS = ["bronze", "silver", "gold", "platinum"]
REGIONS = ["north", "south", "east", "west", "central", "islands"]


def imbalanced(n: int, seed: int, true_k: int, overlap: float) -> Generated:
    """One tiny segment (3%) beside a dominant one (40%), heavy-tailed (Student t) numerics, ordinals from
    thresholded latent scores, booleans, categoricals, noise traits and MCAR gaps up to 20%.

    Needs true_k >= 4: with a 3% segment, three segments cannot all stay at or under 40%.
    """
    if true_k < 4:
        raise ValueError("the imbalanced family needs at least 4 segments (3% + three of at most 40%)")
    rng = family_rng("imbalanced", seed)
    rest = 1 - SHARE_MIN - SHARE_MAX  # the other segments share what the tiny and the dominant one leave
    middle = bounded_shares(rng.dirichlet(np.full(true_k - 2, 1.0)), SHARE_MIN / rest, SHARE_MAX / rest)
    shares = np.concatenate([[SHARE_MIN, SHARE_MAX], middle * rest])
    truth = exact_labels(rng, n, shares)
    s = _separation(overlap)
    dims = int(rng.integers(4, 7))
    means = spaced_means(rng, true_k, dims, 2.0 + 4.5 * (1 - overlap))
    columns: dict[str, pd.Series] = {}
    traits: list[Trait] = []
    for j in range(dims):
        name = f"metric_{j + 1}"
        values = means[truth, j] + rng.standard_t(3, n) * 0.8
        columns[name] = pd.Series(100 + 15 * values)
        traits.append(_numeric(name))
    for name, levels in (("tier", TIERS), ("satisfaction", ["1", "2", "3", "4", "5"])):
        latent = (s * rng.normal(0, 1.2, true_k))[truth] + rng.normal(size=n)
        cuts = np.quantile(rng.normal(size=4000) * 1.2, np.linspace(0, 1, len(levels) + 1)[1:-1])
        columns[name] = categorical(np.searchsorted(cuts, latent), levels)
        traits.append(_ordinal(name, levels))
    for j in range(3):
        name = f"uses_{j + 1}"
        columns[name] = boolean(rng.random(n) < expit(logit(0.3) + s * rng.normal(0, 1.8, true_k))[truth])
        traits.append(_boolean(name))
    columns["region"] = categorical(
        draw_codes(rng, segment_profiles(rng, true_k, len(REGIONS), s, alpha=0.4), truth), REGIONS
    )
    traits.append(_categorical("region", REGIONS))
    noise = ["noise_a", "noise_b", "noise_paperless"]
    columns["noise_a"] = pd.Series(rng.normal(0, 1, n))
    columns["noise_b"] = pd.Series(rng.gamma(2.0, 1.0, n))
    columns["noise_paperless"] = boolean(rng.random(n) < 0.6)
    traits += [_numeric("noise_a"), _numeric("noise_b"), _boolean("noise_paperless")]
    missing = {}
    for name in columns:
        share = float(rng.choice([0.0, rng.uniform(0.0, MISSING_MAX)]))
        columns[name] = blank(rng, columns[name], share)
        missing[name] = round(share * n) / n
    return _finish(columns, traits, truth, shares, missing, tuple(noise))


def nested(n: int, seed: int, true_k: int, overlap: float) -> Generated:
    """Segments inside 2 or 3 far-apart groups: the trap where the coarse split looks like the answer.

    Groups are 8 sds apart; segments within a group 1.5 (overlap 1) to 5 (overlap 0) sds apart. A categorical
    follows the group, booleans follow the segment; MCAR gaps.
    """
    rng = family_rng("nested", seed)
    groups = int(rng.integers(2, min(3, true_k - 1) + 1))
    shares = bounded_shares(rng.dirichlet(np.full(true_k, 3.0)), 0.05, SHARE_MAX)
    truth = exact_labels(rng, n, shares)
    group_of = np.arange(true_k) % groups
    dims = int(rng.integers(5, 9))
    centers = spaced_means(rng, groups, dims, 8.0)
    within = np.zeros((true_k, dims))
    for g in range(groups):
        members = np.flatnonzero(group_of == g)
        if len(members) > 1:
            within[members] = spaced_means(rng, len(members), dims, 1.5 + 3.5 * (1 - overlap))
    means = centers[group_of] + within
    x = means[truth] + rng.normal(size=(n, dims))
    columns: dict[str, pd.Series] = {}
    traits: list[Trait] = []
    for j in range(dims):
        name = f"habit_{j + 1}"
        columns[name] = pd.Series(np.round(30 + 6 * x[:, j], 1))
        traits.append(_numeric(name))
    levels = ["plan_a", "plan_b", "plan_c", "plan_d", "plan_e"]
    group_profiles = rng.dirichlet(np.full(len(levels), 0.4), size=groups)
    columns["plan"] = categorical(draw_codes(rng, group_profiles[group_of], truth), levels)
    traits.append(_categorical("plan", levels))
    s = _separation(overlap)
    for j in range(2):
        name = f"member_{j + 1}"
        columns[name] = boolean(rng.random(n) < expit(s * rng.normal(0, 1.5, true_k))[truth])
        traits.append(_boolean(name))
    missing = {}
    for name in columns:
        share = float(rng.choice([0.0, rng.uniform(0.0, 0.08)]))
        columns[name] = blank(rng, columns[name], share)
        missing[name] = round(share * n) / n
    return _finish(columns, traits, truth, shares, missing)


Family = Callable[[int, int, int, float], Generated]
FAMILIES: dict[str, Family] = {
    "gaussian": gaussian_mixture,
    "latent_class": latent_class,
    "mixed_money": mixed_money,
    "imbalanced": imbalanced,
    "nested": nested,
}
MIN_K = {"imbalanced": 4}  # families that cannot have fewer segments (see their docstrings)


def draw_spec(family: str, seed: int, n_range: tuple[int, int] = N_RANGE) -> CaseSpec:
    """A case's parameters from its seed: true k in 3..8, overlap in [0, 1], n in n_range (thousands)."""
    rng = family_rng(family, seed, stream=1)
    true_k = int(rng.integers(max(K_RANGE[0], MIN_K.get(family, 0)), K_RANGE[1] + 1))
    overlap = round(float(rng.uniform(0.0, 1.0)), 2)
    n = int(rng.integers(n_range[0] // 1000, n_range[1] // 1000 + 1)) * 1000
    return CaseSpec(family, seed, true_k, overlap, n)


def generate(spec: CaseSpec) -> Generated:
    return FAMILIES[spec.family](spec.n, spec.seed, spec.true_k, spec.overlap)
