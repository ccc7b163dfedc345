"""Clustering methods compared at the true k on the same cases: `(frame, traits, seed, k) -> (n,) labels`.

"build" is the project's public entry point; the others work on the same feature matrix
(FeatureTransform.fit(frame, traits).transform(frame)), except k-prototypes, which clusters the raw traits
(numbers standardized, levels as they are) the way a mixed-type method is meant to.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture

from persona_pipeline.core.features import FeatureTransform
from persona_pipeline.core.model import build_model
from persona_pipeline.core.traits import Trait, TraitKind

try:  # optional: k-prototypes, the usual mixed-type baseline; never a project dependency
    from kmodes.kprototypes import KPrototypes
except ImportError:
    KPrototypes = None

Method = Callable[[pd.DataFrame, list[Trait], int, int], np.ndarray]

CONSENSUS_FITS = 10
CONSENSUS_SAMPLE = 2_000  # rows in the co-association matrix: (m, m) float, average linkage is O(m^2)
CONSENSUS_SUBSAMPLE = 0.8  # share of rows each of the fits sees
KPROTOTYPES_SAMPLE = 3_000  # k-prototypes is pure Python per iteration: fit on a sample, then assign everyone


def features(frame: pd.DataFrame, traits: list[Trait]) -> np.ndarray:
    """(n, d) float32: the matrix the build clusters, for every method that works on features."""
    return FeatureTransform.fit(frame, traits).transform(frame)


def nearest(x: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """(n,) index of the nearest of (k, d) centers, in chunks so (n, k) distances stay small."""
    out = np.empty(len(x), dtype=np.int64)
    for start in range(0, len(x), 100_000):
        block = x[start : start + 100_000].astype(np.float64)
        d = (block**2).sum(1)[:, None] - 2 * block @ centers.T + (centers**2).sum(1)[None, :]
        out[start : start + len(block)] = d.argmin(axis=1)
    return out


def build(frame: pd.DataFrame, traits: list[Trait], seed: int, k: int) -> np.ndarray:
    return np.asarray(build_model(frame, traits, seed=seed, k=k).persona_ids)


def kmeans10(frame: pd.DataFrame, traits: list[Trait], seed: int, k: int) -> np.ndarray:
    """The plain baseline: scikit-learn KMeans, 10 inits, every row."""
    return KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(features(frame, traits))


def gmm(frame: pd.DataFrame, traits: list[Trait], seed: int, k: int) -> np.ndarray:
    """Diagonal Gaussian mixture: each cluster its own spread per feature (k-means assumes one for all).

    reg_covar 0.1 (features have unit variance): at scikit-learn's 1e-6, or 1e-3, a component settles on the
    imputed rows (a missing number takes the median, a point mass of zero variance) and ARI drops to ~0.02.
    """
    x = features(frame, traits).astype(np.float64)
    model = GaussianMixture(k, covariance_type="diag", reg_covar=0.1, n_init=2, random_state=seed)
    return model.fit(x).predict(x)


def pca_kmeans(frame: pd.DataFrame, traits: list[Trait], seed: int, k: int) -> np.ndarray:
    """KMeans on the principal components that keep 90% of the variance: drops low-variance noise directions."""
    x = PCA(n_components=0.9, svd_solver="full").fit_transform(features(frame, traits))
    return KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(x)


def consensus(frame: pd.DataFrame, traits: list[Trait], seed: int, k: int) -> np.ndarray:
    """Evidence accumulation: how often two rows share a cluster over 10 KMeans fits on 80% subsamples, cut by
    average linkage on a sample of rows; everyone then goes to the nearest of that cut's centroids."""
    x = features(frame, traits)
    rng = np.random.default_rng(seed)
    sample = rng.choice(len(x), min(len(x), CONSENSUS_SAMPLE), replace=False)
    together = np.zeros((len(sample), len(sample)))
    for fit in range(CONSENSUS_FITS):
        rows = rng.choice(len(x), int(CONSENSUS_SUBSAMPLE * len(x)), replace=False)
        model = KMeans(n_clusters=k, n_init=1, random_state=seed * 1000 + fit).fit(x[rows])
        labels = model.predict(x[sample])
        together += labels[:, None] == labels[None, :]
    distance = 1.0 - together / CONSENSUS_FITS
    np.fill_diagonal(distance, 0.0)
    cut = fcluster(linkage(squareform(distance, checks=False), method="average"), k, criterion="maxclust") - 1
    centers = np.vstack([x[sample][cut == c].mean(axis=0) for c in np.unique(cut)])
    return nearest(x, centers.astype(np.float64))


class NotApplicable(Exception):
    """A method that does not apply to a case (reported as n/a, not as a failure)."""


def raw_numbers(trait: Trait, column: pd.Series) -> np.ndarray:
    """(n,) float64 of a numeric-like trait, NaN for missing: numbers, a date's days before the latest date,
    an ordinal's level index. Written here rather than borrowed from the build, so the baseline stays its own."""
    if trait.kind is TraitKind.DATE:
        dates = pd.to_datetime(column, errors="coerce")
        return ((dates.max() - dates) / pd.Timedelta(days=1)).to_numpy(dtype="float64", na_value=np.nan)
    if trait.kind is TraitKind.ORDINAL:
        codes = pd.Categorical(column.astype(object), categories=list(trait.levels)).codes.astype("float64")
        return np.where(codes < 0, np.nan, codes)
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def kprototypes(frame: pd.DataFrame, traits: list[Trait], seed: int, k: int) -> np.ndarray:
    """k-prototypes (kmodes package) on the raw traits: numbers imputed with the median, right-skewed ones
    logged as the build logs them (without it, Pareto income and lognormal spend own the distance), standardized;
    categorical and boolean values as text with 'missing' as a level; fit on a sample, every row assigned."""
    if KPrototypes is None:
        raise RuntimeError("k-prototypes needs the optional kmodes package (pip install kmodes)")
    parts, categorical = [], []
    for trait in traits:
        column = frame[trait.name]
        if trait.numeric_like:
            values = raw_numbers(trait, column)
            values = np.where(np.isfinite(values), values, np.nanmedian(values))
            if values.min() >= 0 and pd.Series(values).skew() > 1.5:  # money: a 2x gap, not a $ gap
                values = np.log1p(values)
            parts.append(pd.Series((values - values.mean()) / (values.std() or 1.0)))
        else:
            categorical.append(len(parts))
            parts.append(
                column.astype(object).where(column.notna(), "missing").astype(str).reset_index(drop=True)
            )
    if not categorical:
        raise NotApplicable("k-prototypes needs at least one categorical or boolean trait")
    raw = pd.concat(parts, axis=1).to_numpy(dtype=object)
    rng = np.random.default_rng(seed)
    sample = rng.choice(len(raw), min(len(raw), KPROTOTYPES_SAMPLE), replace=False)
    model = KPrototypes(n_clusters=k, init="Cao", n_init=2, random_state=seed, n_jobs=1)
    model.fit(raw[sample], categorical=categorical)
    return np.asarray(model.predict(raw, categorical=categorical))


METHODS: dict[str, Method] = {
    "build": build,
    "kmeans10": kmeans10,
    "gmm": gmm,
    "pca_kmeans": pca_kmeans,
    "consensus": consensus,
    "kprototypes": kprototypes,
}


def available(name: str) -> bool:
    """Whether a method can run here (k-prototypes needs the optional kmodes package)."""
    return name != "kprototypes" or KPrototypes is not None
