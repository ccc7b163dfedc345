"""Where steps hand data to each other (PERSONA_STEP_STORAGE): data, never pickles, in files or the warehouse."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from persona_pipeline import config
from persona_pipeline.core.model import BuildOutcome
from persona_pipeline.defs.shared.io import decode, encode
from persona_pipeline.errors import BuildError, ConfigError
from persona_pipeline.persona_sets import catalog
from persona_pipeline.runtime.jobs import build_persona_set, run_pipeline
from persona_pipeline.scoring import pipelines
from persona_pipeline.warehouse import persona_sets as store
from persona_pipeline.warehouse import step_outputs
from persona_pipeline.warehouse.memberships import read_memberships
from persona_pipeline_tests.helpers import stored_scores

rows = st.lists(
    st.tuples(
        st.integers(-(2**62), 2**62),
        st.floats(allow_nan=True, allow_infinity=False, width=64),
        st.one_of(st.none(), st.text(max_size=12)),
        st.booleans(),
        st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2100, 1, 1)),
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(rows)
def test_a_frame_comes_back_as_it_went_types_included(values: list[tuple]) -> None:
    frame = pd.DataFrame(values, columns=["contact_id", "score", "name", "active", "seen_at"]).astype(
        {"contact_id": "int64", "score": "float64", "active": "bool", "seen_at": "datetime64[ns]"}
    )
    frame["level"] = frame["name"].fillna("?").str[:1].astype("category")
    back = decode(encode(frame))
    pd.testing.assert_frame_equal(back, frame)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
        max_leaves=12,
    )
)
def test_json_values_come_back_as_they_went(value: object) -> None:
    assert decode(encode(value)) == value


def test_numpy_numbers_go_as_plain_numbers_and_code_never_goes() -> None:
    assert decode(encode({"k": np.int64(6), "share": np.float32(0.5)})) == {"k": 6, "share": 0.5}
    with pytest.raises(TypeError, match="cannot be handed on as data"):
        encode(object())


def test_an_output_missing_from_the_warehouse_says_what_to_rerun(warehouse: Engine) -> None:
    with pytest.raises(BuildError, match="materialize the upstream asset again"):
        step_outputs.load(warehouse, "assets/nowhere")
    step_outputs.save(warehouse, "assets/x", b"first")
    step_outputs.save(warehouse, "assets/x", b"second")  # a retried step replaces what it wrote
    assert step_outputs.load(warehouse, "assets/x") == b"second"


def test_old_outputs_go_as_new_ones_arrive(warehouse: Engine) -> None:
    step_outputs.save(warehouse, "runs/old", b"old")
    past = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=step_outputs.OUTPUT_DAYS + 1)
    with warehouse.begin() as conn:
        conn.execute(sa.update(step_outputs.step_outputs).values(written_at=past))
    step_outputs.save(warehouse, "runs/new", b"new")
    with pytest.raises(BuildError):
        step_outputs.load(warehouse, "runs/old")
    assert step_outputs.load(warehouse, "runs/new") == b"new"


def test_a_build_and_a_scoring_run_hand_data_on_through_the_warehouse(
    seeded: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:  # noqa: ANN001 - pytest's tmp_path
    """Same data and seed, same personas, whether steps hand data on in files or in the warehouse."""
    catalog.create(seeded, "In files", "customers")
    assert build_persona_set("In files", lambda _: None, study=False).success
    monkeypatch.setenv("PERSONA_STEP_STORAGE", "warehouse")
    catalog.create(seeded, "In the warehouse", "customers")
    assert build_persona_set("In the warehouse", lambda _: None, study=False).success

    with seeded.connect() as conn:
        keys = set(conn.execute(sa.select(step_outputs.step_outputs.c.output_key)).scalars())
    assert any(k.startswith("assets/persona_model/") for k in keys), keys
    with seeded.connect() as conn:
        payload = conn.execute(
            sa.select(step_outputs.step_outputs.c.payload).where(
                step_outputs.step_outputs.c.output_key.like("assets/persona_model/%")
            )
        ).scalar_one()
    outcome = decode(bytes(payload))
    warehouse_set = store.get(seeded, "In the warehouse")
    assert (
        isinstance(outcome, BuildOutcome) and outcome.model.k == store.current_build(seeded, warehouse_set).k
    )

    def assignment(name: str) -> pd.Series:
        record = store.get(seeded, name)
        names = {p.persona_id: p.name for p in store.read_personas(seeded, record.id)}
        members = read_memberships(seeded, record.id).set_index("contact_id").sort_index()
        return members["persona_id"].map(names)

    pd.testing.assert_series_equal(assignment("In files"), assignment("In the warehouse"))

    pipelines.create(
        seeded, "through the warehouse", ["customers"], ["In the warehouse"], destination_table="scores"
    )
    assert run_pipeline("through the warehouse", lambda _: None).success
    with seeded.connect() as conn:
        keys = set(conn.execute(sa.select(step_outputs.step_outputs.c.output_key)).scalars())
    assert any(k.startswith("runs/") for k in keys), keys
    assert len(stored_scores(seeded, "scores")) == len(assignment("In the warehouse"))


def test_the_executor_setting_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERSONA_EXECUTOR", "kubernetes")
    with pytest.raises(ConfigError, match="PERSONA_EXECUTOR must be one of multiprocess, celery"):
        config.executor_settings()
    monkeypatch.setenv("PERSONA_EXECUTOR", "Celery")
    monkeypatch.delenv("PERSONA_STEP_STORAGE", raising=False)
    assert config.executor_settings().distributed
    assert config.step_storage() == config.WAREHOUSE_STEP_STORAGE  # workers on other hosts share no folder
    monkeypatch.setenv("PERSONA_STEP_STORAGE", "s3://bucket/steps")
    assert config.step_storage() == "s3://bucket/steps"
