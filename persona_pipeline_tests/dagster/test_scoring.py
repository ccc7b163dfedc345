"""Real-time scoring: one contact at a time agrees with the batch path; bad contacts get clear errors."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from persona_pipeline.cli import main
from persona_pipeline.core import latent_class
from persona_pipeline.core.domain import ClusteringMethod
from persona_pipeline.core.model import build_model
from persona_pipeline.core.scoring import Scorer, ScoringError
from persona_pipeline.core.synthetic import BUILTIN_CATALOG, generate
from persona_pipeline.persona_sets import catalog
from persona_pipeline.runtime.jobs import build_persona_set
from persona_pipeline.warehouse import persona_sets as store

TRAITS = BUILTIN_CATALOG.select(None)
BASE = generate(3_000, 0, seed=4, end_date=dt.date(2026, 11, 1), with_orders=False).contacts
MODEL = build_model(BASE, TRAITS, seed=0).model
SCORER = Scorer(MODEL, known_traits=set(BUILTIN_CATALOG.names))
LATENT = build_model(BASE, TRAITS, seed=0, method=ClusteringMethod.LATENT_CLASS).model
LATENT_SCORER = Scorer(LATENT, known_traits=set(BUILTIN_CATALOG.names))


def _value(trait):  # noqa: ANN001, ANN202 - a hypothesis strategy for one trait's value, missing included
    if trait.kind == "numeric":
        return st.one_of(st.none(), st.floats(trait.minimum, trait.maximum))
    if trait.kind == "boolean":
        return st.one_of(st.none(), st.booleans())
    return st.one_of(st.none(), st.sampled_from([*trait.levels, "never-seen-level"]))


contacts = st.fixed_dictionaries({}, optional={t.name: _value(t) for t in TRAITS})


def _frame(contact: dict) -> pd.DataFrame:
    """One contact as the batch path reads it: the catalog's columns, typed as a load types them."""
    frame = pd.DataFrame([{t.name: contact.get(t.name) for t in TRAITS}])
    for trait in TRAITS:
        if trait.kind == "boolean":
            frame[trait.name] = frame[trait.name].astype("boolean")
        elif trait.kind == "numeric":
            frame[trait.name] = pd.to_numeric(frame[trait.name]).astype("float64")
    return frame


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(contact=contacts)
def test_single_contact_scoring_agrees_with_the_batch_path(contact: dict) -> None:
    single = SCORER.score(contact)
    frame = _frame(contact)
    batch, confidence = MODEL.assign(frame)
    x = MODEL.transform.transform(frame)[0].astype(np.float64)
    distances = ((MODEL.centroids.astype(np.float32).astype(np.float64) - x) ** 2).sum(axis=1)
    index = {pid: i for i, pid in enumerate(MODEL.persona_ids)}
    # the same persona, or a float32 near-tie between the two
    assert (
        single.persona_id == batch[0]
        or abs(distances[index[single.persona_id]] - distances[index[batch[0]]]) < 1e-3
    )
    assert 0.0 <= single.confidence <= 1.0


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(contact=contacts)
def test_a_latent_class_set_scores_one_contact_as_the_batch_path_does(contact: dict) -> None:
    """Same persona, same posterior: missing traits add nothing in either path, and the terms are added in
    the same order (a last-bit difference in log1p could only matter at an exact tie)."""
    single = LATENT_SCORER.score(contact)
    frame = _frame(contact)
    batch, confidence = LATENT.assign(frame)
    cost = latent_class.costs(LATENT.transform.trait_values(frame), LATENT.latent)[0]
    index = {pid: i for i, pid in enumerate(LATENT.persona_ids)}
    assert single.persona_id == batch[0] or abs(cost[index[single.persona_id]] - cost[index[batch[0]]]) < 1e-9
    assert single.confidence == pytest.approx(float(confidence[0]), abs=1e-6)
    assert set(single.missing) >= {n for n in LATENT.transform.trait_names if contact.get(n) is None}


def test_a_contact_with_no_traits_joins_the_largest_latent_class() -> None:
    """Nothing imputed: with every trait missing only the personas' weights speak."""
    single = LATENT_SCORER.score({})
    assert single.persona_id == LATENT.persona_ids[int(np.argmin(LATENT.latent.base))]
    assert single.confidence == pytest.approx(float(np.exp(-LATENT.latent.base).max()), rel=1e-6)
    assert set(single.missing) == set(LATENT.transform.trait_names)


def test_real_contacts_score_like_their_batch_memberships() -> None:
    batch, _ = MODEL.assign(BASE)
    singles = [SCORER.score({k: (None if pd.isna(v) else v) for k, v in row.items()}).persona_id for row in
               BASE[BUILTIN_CATALOG.names].head(500).to_dict("records")]  # fmt: skip
    assert np.mean(np.asarray(singles) == batch[:500]) >= 0.998
    latent, _ = LATENT.assign(BASE)
    singles = [LATENT_SCORER.score({k: (None if pd.isna(v) else v) for k, v in row.items()}).persona_id
               for row in BASE[BUILTIN_CATALOG.names].head(500).to_dict("records")]  # fmt: skip
    assert (np.asarray(singles) == latent[:500]).all()


@pytest.mark.parametrize(
    ("contact", "message"),
    [
        ({"shoe_size": 44}, "unknown trait.*'shoe_size'"),
        ({"agee": 30}, r"unknown trait.*'agee' \(did you mean 'age'\?\)"),
        ({"age": "forty"}, "'age' takes a number"),
        ({"age": True}, "'age' takes a number"),
        ({"dog_owner": "sometimes"}, "'dog_owner' takes true or false"),
        ({"urbanicity": 3}, "'urbanicity' takes one of its levels"),
    ],
)
def test_bad_contacts_are_refused_with_the_trait_named(contact: dict, message: str) -> None:
    with pytest.raises(ScoringError, match=message):
        SCORER.score(contact)


def test_unseen_levels_and_missing_traits_are_allowed() -> None:
    assert SCORER.score({}).persona_id in MODEL.persona_ids
    assert (
        SCORER.score({"urbanicity": "lunar", "state": "ZZ"}).persona_id in MODEL.persona_ids
    )  # state: not clustered


def test_score_from_the_command_line(seeded: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    catalog.create(seeded, "Customers", "customers")
    assert build_persona_set("Customers", lambda _: None, study=False).success
    contact = {"age": 71, "years_at_residence": 30, "commute_minutes": 3, "credit_score": 800, "children": 0}
    assert main(["score", "--persona-set", "Customers", "--json", json.dumps(contact)]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    names = {p.persona_id: p.name for p in store.read_personas(seeded, store.get(seeded, "Customers").id)}
    assert result["persona_name"] == names[result["persona_id"]] and 0 <= result["confidence"] <= 1
    assert main(["score", "--persona-set", "Customers", "--json", '{"age": "x"}']) == 2
    assert "'age' takes a number" in capsys.readouterr().err
    assert main(["score", "--persona-set", "Customers", "--json", "{age"]) == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_a_normalized_trait_scores_loose_levels_as_the_load_reads_them() -> None:
    loose = Scorer(MODEL, known_traits=set(BUILTIN_CATALOG.names), normalized={"urbanicity"})
    contact = {"urbanicity": "suburban", "age": 41}
    assert loose.score({**contact, "urbanicity": "  SubUrban "}) == loose.score(contact)
    unseen = SCORER.score({**contact, "urbanicity": "  SubUrban "})
    assert replace(unseen, not_levels=()) == SCORER.score({"age": 41}) and unseen.not_levels  # missing, said


def test_a_level_the_build_never_saw_is_scored_as_missing_and_said_with_the_level_meant() -> None:
    """A trial scored 'Never Married' for '1. Never Married': a near miss scored as missing, with no hint."""
    scored = SCORER.score({"urbanicity": "Suburbn", "age": 40})
    assert "urbanicity" in scored.missing
    assert scored.not_levels == ("urbanicity: 'Suburbn' is not one of its levels (did you mean 'suburban'?)",)
    assert scored.to_dict()["not_levels"] == list(scored.not_levels)
    assert SCORER.score({"urbanicity": "suburban"}).not_levels == ()
