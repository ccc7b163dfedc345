"""Scoring inside PostgreSQL assigns every contact exactly the persona the Python path assigns, ties included."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from persona_pipeline.cli import main
from persona_pipeline.core.domain import ChangeWindow, ScoringBucket
from persona_pipeline.core.model import PersonaModel
from persona_pipeline.core.sql_scoring import scoring_query
from persona_pipeline.errors import PipelineError
from persona_pipeline.runtime.jobs import build_persona_set, run_pipeline
from persona_pipeline.scoring import pipelines, runs
from persona_pipeline.warehouse import persona_sets as store
from persona_pipeline.warehouse.bulk import read_frame
from persona_pipeline.warehouse.engine import quote
from persona_pipeline_tests.helpers import stored_scores

pytestmark = pytest.mark.parametrize("warehouse", ["postgres"], indirect=True)


def _both(engine: Engine, table_python: str, table_sql: str) -> pd.DataFrame:
    python = stored_scores(engine, table_python)
    warehouse = stored_scores(engine, table_sql)
    assert len(python) == len(warehouse) > 0
    return python.merge(warehouse, on=["contact_id", "persona_set"], suffixes=("_py", "_sql"), validate="1:1")


def test_a_pipeline_scored_in_the_warehouse_writes_what_python_writes(ready: Engine) -> None:
    """Full run (shadow tables swapped in) and a rerun of changed contacts, both ways, row for row."""
    common = {"population": ["customers"], "payload": ["Customers"]}
    pipelines.create(ready, "in_python", destination_table="scores_python", **common)
    assert main(["pipeline", "create", "in_sql", "--population", "customers", "--payload", "Customers",
                 "--table", "scores_sql", "--score-in", "warehouse"]) == 0  # fmt: skip
    assert pipelines.get(ready, "in_sql").score_in == "warehouse"
    for name in ("in_python", "in_sql"):
        assert run_pipeline(name, lambda _: None).success
    both = _both(ready, "scores_python", "scores_sql")
    assert (both["persona_id_py"] == both["persona_id_sql"]).all()
    assert (both["persona_name_py"] == both["persona_name_sql"]).all()
    assert np.allclose(both["confidence_py"], both["confidence_sql"], atol=2e-4)

    with ready.begin() as conn:  # some contacts change: a window run rescoring only them, both ways
        conn.execute(sa.text("UPDATE contacts SET age = age + 30, updated_at = updated_at + INTERVAL '1 day' "
                             "WHERE contact_id % 7 = 0"))  # fmt: skip
        median, last = conn.execute(
            sa.text(
                "SELECT PERCENTILE_DISC(0.5) WITHIN GROUP (ORDER BY updated_at), MAX(updated_at) FROM contacts"
            )
        ).one()
    window = ChangeWindow(median, 0, last, 2**62)  # the later half of the changes
    before = stored_scores(ready, "scores_sql")
    for name in ("in_python", "in_sql"):
        scored = runs.score_bucket(
            ready, pipelines.get(ready, name), ScoringBucket(0, None, None), window=window
        )
        assert scored > 0
    both = _both(ready, "scores_python", "scores_sql")
    assert (both["persona_id_py"] == both["persona_id_sql"]).all()
    after = stored_scores(ready, "scores_sql")
    assert (
        len(after) == len(before)
        and (after["persona_id"].to_numpy() != before["persona_id"].to_numpy()).any()
    )


def _both_paths(
    engine: Engine, model: PersonaModel
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, pd.DataFrame]:
    """Every contact scored by the model in Python and by its SQL in PostgreSQL, in contact order: the frame
    read, the Python personas and confidences, and the warehouse's rows."""
    columns = ", ".join(f"c.{quote(engine, t)}" for t in ["contact_id", *model.transform.trait_names])
    frame = read_frame(engine, f"SELECT {columns} FROM contacts c ORDER BY c.contact_id", categorical=True)  # noqa: S608
    expected, confidence = model.assign(frame)
    names = {pid: f"persona {pid}" for pid in model.persona_ids}
    query = scoring_query(model, names, "contacts c", lambda t: f"c.{quote(engine, t)}", ["c.contact_id"])
    got = read_frame(engine, f"SELECT * FROM ({query.sql}) q ORDER BY carried_0", query.params)  # noqa: S608
    assert got["carried_0"].tolist() == frame["contact_id"].tolist()
    return frame, expected, confidence, got


def test_ties_go_to_the_lowest_centroid_in_both_paths(ready: Engine) -> None:
    """A model with a duplicated centroid: every contact nearest to it ties; both paths pick the first copy."""
    record = store.get(ready, "Customers")
    model = PersonaModel.from_json(store.current_build(ready, record).model)
    twin = dataclasses.replace(
        model,
        centroids=np.vstack([model.centroids, model.centroids[:1]]),
        persona_ids=[*model.persona_ids, 99],
    )
    _, expected, _, got = _both_paths(ready, twin)
    assert (got["persona_id"].to_numpy() == expected).all()
    first = model.persona_ids[0]
    assert (expected == first).any() and not (expected == 99).any()  # ties happened, and the twin lost each


def test_scoring_in_the_warehouse_needs_postgresql(ready: Engine, tmp_path) -> None:  # noqa: ANN001
    from persona_pipeline.warehouse.engine import get_engine

    sqlite = get_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with pytest.raises(PipelineError, match="PostgreSQL"):
        pipelines.create(
            sqlite, "x", ["customers"], ["Customers"], destination_table="t", score_in="warehouse"
        )


def test_a_latent_class_set_scores_in_the_warehouse_as_in_python(ready: Engine) -> None:
    """Missing numbers stay NULL (LEAST and GREATEST would skip them), yes/no and levels are read by index,
    the costs are added in Python's order: the same persona for every contact, the same posterior."""
    assert main(["persona-set", "update", "Customers", "--method", "latent-class"]) == 0
    assert build_persona_set("Customers", lambda _: None, study=False).success
    with ready.begin() as conn:  # a missing value of every kind the model reads, on different contacts
        conn.execute(sa.text("UPDATE contacts SET age = NULL WHERE contact_id % 5 = 0"))
        conn.execute(sa.text("UPDATE contacts SET household_income = NULL WHERE contact_id % 7 = 1"))
        conn.execute(sa.text("UPDATE contacts SET children = NULL WHERE contact_id % 6 = 2"))
        conn.execute(sa.text("UPDATE contacts SET dog_owner = NULL WHERE contact_id % 3 = 0"))
        conn.execute(sa.text("UPDATE contacts SET urbanicity = NULL WHERE contact_id % 4 = 1"))
    record = store.get(ready, "Customers")
    model = PersonaModel.from_json(store.current_build(ready, record).model)
    assert str(model.method) == "latent-class"
    frame, expected, confidence, got = _both_paths(ready, model)
    assert frame[["age", "household_income", "children", "dog_owner", "urbanicity"]].isna().any().all()
    assert any(t.thresholds is not None for t in model.latent.terms)  # a count scored by its levels too
    assert (got["persona_id"].to_numpy() == expected).all()
    assert np.allclose(got["confidence"].astype(float), confidence, atol=1e-4)
    assert len(set(expected)) == model.k > 1
