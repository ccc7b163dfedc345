"""Assignment to the nearest centroid is exact: the fast float32 path agrees with the exact sums the
warehouse repeats, and a tie goes to the lowest centroid index."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from persona_pipeline.core.clustering import exact_distances, nearest_two


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.integers(2, 12),
    st.integers(1, 30),
    st.sampled_from([0.5, 1.0, 0.25]),
)
def test_fast_assignment_equals_the_exact_one_ties_included(
    seed: int, k: int, features: int, grid: float
) -> None:
    """Points and centroids on a coarse grid make exact ties common (equal distances to two centroids)."""
    rng = np.random.default_rng(seed)
    x = (rng.integers(-6, 7, (400, features)) * grid).astype(np.float32)
    centroids = (rng.integers(-4, 5, (k, features)) * grid).astype(np.float64)
    centroids[-1] = centroids[0]  # a duplicate centroid: every row near it is a tie
    cuts = sorted(rng.choice(np.arange(1, features), size=min(2, features - 1), replace=False).tolist())
    widths = np.diff([0, *cuts, features]).tolist()  # traits of several features, as categories are
    labels, confidence = nearest_two(x, centroids, widths=widths)
    exact = exact_distances(x, centroids, widths)
    assert np.array_equal(labels, exact.argmin(axis=1))  # argmin: the first (lowest) index of the minimum
    assert (labels != k - 1).all()  # the duplicate never wins over its twin
    assert np.all((confidence >= 0) & (confidence <= 1))


def test_continuous_data_agrees_too() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(50_000, 24)).astype(np.float32)
    centroids = rng.normal(size=(9, 24)) * 0.3
    labels, _ = nearest_two(x, centroids)
    assert np.array_equal(labels, exact_distances(x, centroids).argmin(axis=1))
