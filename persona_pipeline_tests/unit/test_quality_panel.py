"""The quality panel's fast subset (benchmarks/quality.py runs the full one): its generators make the cases
they declare, and the build finds easy segments and a public table's classes as well as plain KMeans does."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from persona_pipeline.core.features import FeatureTransform
from persona_pipeline.core.model import build_model
from persona_pipeline_tests.helpers import REPO

N = 3_000


def _panel_module(name: str) -> ModuleType:
    """A module of benchmarks/quality_panel, imported as `python benchmarks/quality.py` imports it, without
    putting benchmarks/ (a folder of scripts: memory, build, load, ...) on everyone's sys.path."""
    if "quality_panel" not in sys.modules:
        init = REPO / "benchmarks" / "quality_panel" / "__init__.py"
        spec = importlib.util.spec_from_file_location(
            "quality_panel", init, submodule_search_locations=[str(init.parent)]
        )
        package = importlib.util.module_from_spec(spec)
        sys.modules["quality_panel"] = package
        spec.loader.exec_module(package)
    return importlib.import_module(f"quality_panel.{name}")


generators = _panel_module("generators")
datasets = _panel_module("datasets")
methods = _panel_module("methods")


def _case(family: str, seed: int = 3, true_k: int = 5, overlap: float = 0.5):
    return generators.FAMILIES[family](N, seed, true_k, overlap)


@pytest.mark.parametrize("family", sorted(generators.FAMILIES))
def test_a_family_makes_the_segments_sizes_and_gaps_it_declares(family: str) -> None:
    case = _case(family)
    sizes = np.bincount(case.truth, minlength=5) / N
    assert case.true_k == 5 and len(np.unique(case.truth)) == 5
    assert np.abs(sizes - case.shares).max() <= 1 / N
    assert sizes.min() >= generators.SHARE_MIN - 1 / N and sizes.max() <= generators.SHARE_MAX + 1 / N
    assert list(case.frame.columns) == [t.name for t in case.traits] and len(case.frame) == N
    missing = case.frame.isna().mean()
    assert set(case.missing) == set(case.frame.columns)
    assert all(abs(missing[name] - share) <= 1 / N for name, share in case.missing.items())
    assert missing.max() <= generators.MISSING_MAX and missing.max() > 0
    x = FeatureTransform.fit(case.frame, case.traits).transform(case.frame)
    assert x.shape[0] == N and np.isfinite(x).all()


@pytest.mark.parametrize("family", sorted(generators.FAMILIES))
def test_a_family_is_deterministic_for_a_seed(family: str) -> None:
    first, again, other = _case(family), _case(family), _case(family, seed=4)
    pd.testing.assert_frame_equal(first.frame, again.frame)
    assert np.array_equal(first.truth, again.truth)
    assert not first.frame.equals(other.frame)


def test_noise_traits_carry_no_segment_and_gaps_depend_on_other_traits_where_declared() -> None:
    for family in ("gaussian", "latent_class", "mixed_money", "imbalanced"):
        case = _case(family, overlap=0.0)
        assert case.noise
        for name in case.noise:  # a segment's share of each value is the cohort's, within sampling error
            values = case.frame[name].astype(str)
            table = pd.crosstab(
                case.truth, values if values.nunique() <= 60 else pd.qcut(case.frame[name], 5)
            )
            expected = (
                table.sum(axis=1).to_numpy()[:, None]
                * table.sum(axis=0).to_numpy()[None, :]
                / table.to_numpy().sum()
            )
            assert (np.abs(table.to_numpy() - expected) < 5 * np.sqrt(expected) + 5).all(), (family, name)
    money = _case("mixed_money")
    assert set(money.mar) == {"income", "store"}
    older = money.frame["age"] > money.frame["age"].median()
    assert money.frame["income"][older].isna().mean() > 1.5 * money.frame["income"][~older].isna().mean()
    no_app = money.frame["has_app"].eq(False)
    assert money.frame["store"][no_app].isna().mean() > 2 * money.frame["store"][~no_app].isna().mean()
    assert (money.frame["store"].cat.categories.size, money.frame["income"].skew() > 2) == (50, True)
    tiny = _case("imbalanced", true_k=6)
    assert sorted(np.round(tiny.shares, 4).tolist())[0] == generators.SHARE_MIN
    assert max(tiny.shares) == pytest.approx(generators.SHARE_MAX)


def test_case_parameters_come_from_the_seed_and_cover_the_declared_ranges() -> None:
    specs = [generators.draw_spec(family, seed) for family in generators.FAMILIES for seed in range(40)]
    assert specs[:3] == [generators.draw_spec(s.family, s.seed) for s in specs[:3]]
    assert {s.true_k for s in specs} == set(range(3, 9))
    assert {s.overlap_label for s in specs} == {"weak", "strong"}
    assert all(generators.N_RANGE[0] <= s.n <= generators.N_RANGE[1] for s in specs)
    assert min(s.true_k for s in specs if s.family == "imbalanced") == 4


@pytest.mark.parametrize(("family", "seed"), [("gaussian", 1), ("latent_class", 1)])
def test_the_build_finds_well_separated_segments_as_well_as_plain_kmeans(family: str, seed: int) -> None:
    """Easy (overlap 0): a mostly numeric base and a mostly categorical one."""
    case = _case(family, seed=seed, true_k=4, overlap=0.0)
    chosen = build_model(case.frame, case.traits, seed=0)
    assert abs(chosen.k_choice.k - 4) <= 1
    at_truth = adjusted_rand_score(case.truth, build_model(case.frame, case.traits, seed=0, k=4).persona_ids)
    kmeans = adjusted_rand_score(case.truth, methods.kmeans10(case.frame, case.traits, 0, 4))
    assert at_truth >= 0.8 and at_truth >= kmeans - 0.05, (at_truth, kmeans)


def test_the_build_finds_the_wine_cultivars() -> None:
    wine = datasets.wine()
    assert wine.true_k == 3 and len(wine.frame) == len(wine.truth) == 178
    assert all(str(t.kind) == "numeric" for t in wine.traits)
    chosen = build_model(wine.frame, wine.traits, seed=0)
    assert abs(chosen.k_choice.k - 3) <= 1
    at_truth = adjusted_rand_score(wine.truth, build_model(wine.frame, wine.traits, seed=0, k=3).persona_ids)
    kmeans = adjusted_rand_score(wine.truth, methods.kmeans10(wine.frame, wine.traits, 0, 3))
    assert at_truth >= 0.8 and at_truth >= kmeans - 0.05, (at_truth, kmeans)
