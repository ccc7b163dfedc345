"""Clustering quality against the generator's hidden segments, identity across rebuilds, and invariants."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.metrics import adjusted_rand_score

from persona_pipeline.core import clustering, identity
from persona_pipeline.core.domain import ClusteringMethod, IdentityFigure
from persona_pipeline.core.features import FeatureTransform, category_codes
from persona_pipeline.core.model import FeatureError, PersonaModel, build_model
from persona_pipeline.core.personas import describe_personas
from persona_pipeline.core.synthetic import BUILTIN_CATALOG, SEGMENTS, generate

END = dt.date(2026, 11, 1)
TRAITS = BUILTIN_CATALOG.select(None)


def _base(seed: int, n: int = 12_000) -> tuple[pd.DataFrame, np.ndarray]:
    base = generate(n, 0, seed=seed, end_date=END, with_orders=False)
    return base.contacts, base.segments["segment"].to_numpy()


METHODS = pytest.mark.parametrize("method", list(ClusteringMethod))


@METHODS
def test_adjusted_rand_index_at_the_hidden_number_of_segments(method: ClusteringMethod) -> None:
    for seed in (0, 1):
        contacts, truth = _base(seed)
        outcome = build_model(contacts, TRAITS, seed=seed, k=len(SEGMENTS), method=method)
        assert outcome.model.method is method
        assert adjusted_rand_score(truth, outcome.persona_ids) >= 0.8


def test_chosen_number_of_personas_is_the_hidden_one_on_most_seeds() -> None:
    chosen = []
    for seed in range(5):
        contacts, _ = _base(seed + 20)
        x = FeatureTransform.fit(contacts, TRAITS).transform(contacts)
        chosen.append(clustering.choose_k(x, seed).k)
    assert sum(k == len(SEGMENTS) for k in chosen) >= 4, chosen
    assert all(clustering.K_MIN <= k <= clustering.K_MAX for k in chosen)


@METHODS
def test_rebuild_after_five_percent_change_keeps_ids_and_names(method: ClusteringMethod) -> None:
    contacts, _ = _base(7)
    first = build_model(contacts, TRAITS, seed=0, method=method)
    first_personas = describe_personas(contacts, first.persona_ids, TRAITS, BUILTIN_CATALOG, 0)
    rng = np.random.default_rng(1)
    changed = contacts.copy()
    movers = rng.choice(len(changed), len(changed) // 20, replace=False)
    donors = rng.choice(len(changed), len(movers), replace=False)
    names = BUILTIN_CATALOG.names
    changed.loc[changed.index[movers], names] = contacts.iloc[donors][names].to_numpy()
    model = PersonaModel.from_json(first.model.to_json())  # as the next build reads it from the warehouse
    second = build_model(
        changed, TRAITS, seed=0, previous=model, previous_ids=first.persona_ids, method=method
    )
    kept_names = {p.persona_id: p.name for p in first_personas}
    second_personas = describe_personas(changed, second.persona_ids, TRAITS, BUILTIN_CATALOG, 0, kept_names)
    assert {p.persona_id: p.name for p in second_personas} == kept_names
    before, after = identity.fingerprints(contacts, TRAITS), identity.fingerprints(changed, TRAITS)
    states = identity.trait_states(first.persona_ids, before, np.ones(len(before), bool), after)
    figure = identity.identity_figure(first.persona_ids, states, second.persona_ids, {}, left=0)
    # a donor can carry the very values a mover had: those movers did not change
    assert figure.changed == int((before != after).sum()) and 0.9 * len(movers) <= figure.changed <= len(
        movers
    )
    assert figure.unchanged + figure.changed == len(contacts) and figure.joined == figure.unknown == 0
    assert figure.unchanged_share >= 0.95
    moved = second.persona_ids != first.persona_ids
    assert figure.unchanged_kept + figure.changed_kept == len(contacts) - moved.sum()
    renamed = identity.identity_figure(
        first.persona_ids, states, second.persona_ids, {1: "'A' -> 'B'"}, left=0
    )
    assert renamed.unchanged_kept == figure.unchanged_kept - int(
        ((second.persona_ids == 1) & ~moved & (states == 1)).sum()
    )
    # the id-only share and the rename are said beside the figure, which counts the rename as a move
    assert renamed.unchanged_same_id == figure.unchanged_kept and "'A' -> 'B'" in renamed.text()
    assert "renamed" not in figure.text() and not any("renamed" in key for key in figure.metadata())
    assert renamed.metadata()["renamed personas (their old name no longer true)"] == "'A' -> 'B'"
    assert IdentityFigure.from_json(renamed.to_json()) == renamed


def test_user_override_and_too_small_cohort() -> None:
    contacts, _ = _base(3, n=2_000)
    outcome = build_model(contacts, TRAITS, seed=0, k=3)
    assert outcome.model.k == 3 and "set by the user" in outcome.k_choice.reason
    # beside the user's k, what the data would choose and the per-k figures that say why
    automatic = build_model(contacts, TRAITS, seed=0).k_choice
    assert f"the data would choose k={automatic.k}" in outcome.k_choice.reason
    verdicts = {s["k"]: s["verdict"] for s in outcome.k_choice.scores}
    assert verdicts[3] == "set by the user" and set(verdicts) == {s["k"] for s in automatic.scores}
    assert "chosen" not in verdicts.values() and (
        automatic.k == 3 or verdicts[automatic.k] == "the data's choice"
    )
    assert next(s["stability"] for s in outcome.k_choice.scores if s["k"] == 3) == outcome.stability
    with pytest.raises(clustering.ClusteringError, match="fewer than the 5 personas"):
        build_model(contacts.head(4), TRAITS, seed=0, k=5)


def test_constant_trait_is_dropped_by_default_and_refused_when_chosen() -> None:
    contacts, _ = _base(3, n=2_000)
    contacts = contacts.assign(urbanicity="urban")
    outcome = build_model(contacts, TRAITS, seed=0)
    assert outcome.dropped_traits == ["urbanicity (one value for the whole cohort)"]
    with pytest.raises(FeatureError, match="urbanicity.*single value.*remove them from --traits"):
        build_model(contacts, BUILTIN_CATALOG.select(["age", "urbanicity"]), seed=0, explicit_traits=True)


@METHODS
def test_same_data_and_seed_give_the_same_personas(method: ClusteringMethod) -> None:
    contacts, _ = _base(4, n=3_000)
    a = build_model(contacts, TRAITS, seed=9, method=method)
    b = build_model(contacts, TRAITS, seed=9, method=method)
    assert np.array_equal(a.persona_ids, b.persona_ids) and a.model.to_json() == b.model.to_json()


def test_transform_handles_missing_and_unseen_values_and_survives_json() -> None:
    contacts, _ = _base(2, n=1_000)
    transform = FeatureTransform.fit(contacts, TRAITS)
    odd = contacts.head(3).copy()
    odd.loc[odd.index[0], "urbanicity"] = "orbital"  # unseen level: treated as missing
    odd.loc[odd.index[1], ["age", "dog_owner"]] = [np.nan, pd.NA]
    x = transform.transform(odd)
    assert np.isfinite(x).all() and x.shape == (3, len(transform.column_names))
    again = FeatureTransform.from_dict(transform.to_dict()).transform(odd)
    assert np.array_equal(x, again)


@settings(max_examples=50, deadline=None)
@given(
    points=arrays(
        np.float32, st.tuples(st.integers(1, 60), st.just(4)), elements=st.floats(-50, 50, width=32)
    ),
    centroids=arrays(
        np.float32, st.tuples(st.integers(2, 6), st.just(4)), elements=st.floats(-50, 50, width=32)
    ),
)
def test_nearest_two_matches_brute_force(points: np.ndarray, centroids: np.ndarray) -> None:
    labels, confidence = clustering.nearest_two(points, centroids, chunk=7)
    distances = ((points[:, None, :].astype(np.float64) - centroids[None, :, :]) ** 2).sum(axis=2)
    best = distances[np.arange(len(points)), labels]
    assert np.all(best <= distances.min(axis=1) + 1e-2 * (1 + distances.min(axis=1)))
    assert np.all((confidence >= 0) & (confidence <= 1))


@settings(max_examples=50, deadline=None)
@given(
    labels=arrays(np.int64, st.integers(5, 80), elements=st.integers(0, 3)),
    permutation=st.permutations([11, 12, 13, 14]),
)
def test_identity_matching_recovers_a_relabelling(labels: np.ndarray, permutation: list[int]) -> None:
    old_ids = np.asarray(permutation)[labels]
    ids = clustering.match_identities(labels, old_ids, 4, [11, 12, 13, 14])
    present = np.unique(labels)
    assert all(ids[c] == permutation[c] for c in present)
    assert sorted(ids) == sorted(set(ids))


words = st.text("abcé ", max_size=3)


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.none() | words, max_size=30),
    levels=st.lists(words, min_size=1, max_size=5, unique=True),
    numeric=st.booleans(),
)
def test_level_codes_of_a_categorical_column_match_those_of_the_same_values_as_objects(
    values: list, levels: list[str], numeric: bool
) -> None:
    """Categories read from the warehouse come in any order and may hold levels the model never saw."""
    objects = pd.Series(values, dtype=object)
    if numeric:  # categories that are not text at all match no level
        objects = objects.map(lambda v: None if v is None else len(v))
    codes = category_codes(objects.astype("category"), levels)
    assert codes.tolist() == category_codes(objects, levels).tolist()
    expected = [levels.index(v) if isinstance(v, str) and v in levels else -1 for v in objects]
    assert codes.tolist() == expected


@METHODS
def test_the_build_assigns_every_contact_as_the_stored_model_scores_it(method: ClusteringMethod) -> None:
    """Scores, pipelines, the warehouse's SQL and Flow read the model as stored (its numbers rounded): the
    build's memberships must be that model's answer on every row, a contact tied between personas included
    (a trial found one whose membership said persona 4 and every score persona 1)."""
    contacts, _ = _base(3, n=4_000)
    outcome = build_model(contacts, TRAITS, seed=0, k=4, method=method)
    stored = PersonaModel.from_json(outcome.model.to_json())
    ids, confidence = stored.assign(contacts)
    assert np.array_equal(ids, outcome.persona_ids)
    assert np.array_equal(confidence, outcome.confidence)
