"""The latent-class method's own rules: k on our generator, missing values, and classes nobody joins."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from persona_pipeline.core import latent_class
from persona_pipeline.core.domain import ClusteringMethod
from persona_pipeline.core.features import FeatureTransform
from persona_pipeline.core.model import build_model
from persona_pipeline.core.synthetic import BUILTIN_CATALOG, SEGMENTS, generate

TRAITS = BUILTIN_CATALOG.select(None)


def _contacts(seed: int, n: int) -> pd.DataFrame:
    return generate(n, 0, seed=seed, end_date=dt.date(2026, 11, 1), with_orders=False).contacts


def test_the_latent_k_rule_finds_our_generators_segments_on_most_seeds() -> None:
    """Counts modelled by their levels: before, a bell curve over 0, 1, 2 children claimed spikes and the
    ICL kept falling past the 6 segments (7-10 reproducible classes at a stability threshold of 0.8)."""
    chosen = []
    for seed in range(5):
        contacts = _contacts(seed + 20, 12_000)
        transform = FeatureTransform.fit(contacts, TRAITS)
        choice = latent_class.choose_k(
            transform, transform.trait_values(contacts), transform.transform(contacts), seed
        )
        chosen.append(choice.k)
        table = {s["k"]: s for s in choice.scores}
        assert table[choice.k]["verdict"] == "chosen" and table[choice.k]["stability"] >= latent_class.STABLE
        best = table[choice.k]["icl"]
        for s in choice.scores:  # a reproducible k loses on ICL, or is finer and within the tolerance
            if s["verdict"].startswith("reproducible; ICL higher"):
                assert s["icl"] >= best
            elif s["verdict"].startswith("reproducible; ICL lower"):
                assert s["k"] > choice.k and s["icl"] >= best - latent_class.ICL_TOLERANCE
    assert sum(k == len(SEGMENTS) for k in chosen) >= 4, chosen


def _missing(values: np.ndarray) -> np.ndarray:
    """The same trait with every value missing: NaN for numbers, -1 for level codes."""
    return np.full_like(values, np.nan) if values.dtype.kind == "f" else np.full_like(values, -1)


def test_a_missing_value_adds_nothing_and_an_unseen_level_reads_as_missing() -> None:
    contacts = _contacts(3, 3_000)
    model = build_model(contacts, TRAITS, seed=0, k=4, method=ClusteringMethod.LATENT_CLASS).model
    rows = contacts.head(50).copy()
    values = model.transform.trait_values(rows)
    full = latent_class.costs(values, model.latent)
    alone = latent_class.costs(model.transform.trait_values(rows.head(1)), model.latent)
    assert np.array_equal(alone[0], full[0])  # a contact's cost does not depend on who else is scored
    terms_only = latent_class.LatentClasses(np.zeros(model.k), model.latent.terms)
    names = model.transform.trait_names
    for trait, blank in (("age", None), ("children", None), ("dog_owner", None), ("urbanicity", "orbital")):
        index = names.index(trait)
        term = latent_class.costs(  # the trait's own term: every other trait missing, no base
            [v if i == index else _missing(v) for i, v in enumerate(values)], terms_only
        )
        present = ~np.isnan(values[index]) if values[index].dtype.kind == "f" else values[index] >= 0
        assert present.any() and (term[~present] == 0).all() and (term[present] != 0).all(), trait
        without = latent_class.costs(
            model.transform.trait_values(rows.assign(**{trait: blank})), model.latent
        )
        assert np.allclose(without, full - term, rtol=0, atol=1e-9), trait


def test_a_count_is_modelled_by_its_levels_and_a_value_between_them_reads_as_the_nearest() -> None:
    """children (0, 1, 2, ...) takes few values: each persona has its own share of each, not a bell curve; a
    value the build never saw costs what the nearest value costs (beyond the largest: the largest)."""
    contacts = _contacts(5, 3_000)
    model = build_model(contacts, TRAITS, seed=0, k=3, method=ClusteringMethod.LATENT_CLASS).model
    names = model.transform.trait_names
    by_name = dict(zip(names, model.latent.terms, strict=True))
    assert by_name["children"].thresholds is not None and by_name["age"].thresholds is None
    seen = np.sort(contacts["children"].dropna().unique())
    assert by_name["children"].level_costs.shape == (model.k, len(seen))
    terms_only = latent_class.LatentClasses(np.zeros(model.k), model.latent.terms)

    def cost(children: float) -> np.ndarray:
        rows = contacts.head(1).assign(**{n: None for n in names if n != "children"}, children=children)
        return latent_class.costs(model.transform.trait_values(rows), terms_only)[0]

    levels = [cost(v) for v in seen]
    assert all(not np.array_equal(levels[0], other) for other in levels[1:])
    assert np.array_equal(cost(seen[0] + 0.4), levels[0]) and np.array_equal(cost(seen[1] - 0.4), levels[1])
    assert np.array_equal(cost(seen[-1] + 5), levels[-1])
    stored = latent_class.LatentClasses.from_dict(model.latent.to_dict(decimals=None))
    values = model.transform.trait_values(contacts)
    assert np.array_equal(latent_class.costs(values, stored), latent_class.costs(values, model.latent))


def test_classes_nobody_joins_are_dropped_without_changing_anyone_elses() -> None:
    contacts = _contacts(4, 3_000)
    model = build_model(contacts, TRAITS, seed=0, k=5, method=ClusteringMethod.LATENT_CLASS).model
    values = model.transform.trait_values(contacts)
    full = latent_class.costs(values, model.latent)
    kept = np.array([0, 2, 4])
    assert np.array_equal(
        latent_class.costs(values, latent_class.keep_classes(model.latent, kept)), full[:, kept]
    )


def test_a_users_k_on_a_tiny_cohort_builds_and_reads_as_not_reproducible() -> None:
    """22 contacts and 12 personas asked: halves of 11 rows cannot hold 12 classes, so stability is 0.0 (and
    the warning follows) rather than a crash in the split-half fits."""
    contacts = _contacts(5, 400).head(22)
    outcome = build_model(contacts, TRAITS, seed=0, k=12, method=ClusteringMethod.LATENT_CLASS)
    assert outcome.stability == 0.0 and 2 <= outcome.model.k <= 12
    assert len(np.unique(outcome.persona_ids)) == outcome.model.k
