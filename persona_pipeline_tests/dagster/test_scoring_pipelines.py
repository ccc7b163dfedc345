"""Scoring pipelines on SQLite and PostgreSQL: runs, idempotence, triggers, destinations and bad input."""

from __future__ import annotations

import datetime as dt
import json
import os
import time

import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from persona_pipeline.cli import main
from persona_pipeline.config import score_buckets
from persona_pipeline.core.domain import ScoringBucket, names_by_id
from persona_pipeline.defs.scoring import sensors as scoring_sensors
from persona_pipeline.defs.scoring.jobs import SCORE_JOB, score_run_config
from persona_pipeline.errors import PipelineError
from persona_pipeline.persona_sets import catalog
from persona_pipeline.runtime.jobs import build_persona_set, run_job, run_pipeline
from persona_pipeline.scoring import pipelines, runs
from persona_pipeline.warehouse import persona_sets as store
from persona_pipeline.warehouse.bulk import read_frame
from persona_pipeline.warehouse.pipelines import OUTPUT_COLUMNS
from persona_pipeline_tests.helpers import sensor_tick, stored_scores, table_rows


@pytest.fixture
def leads(ready: Engine) -> None:
    """A second persona set, for the tests that need two (a build costs seconds: the rest go without)."""
    catalog.create(ready, "Leads", "leads")
    assert build_persona_set("Leads", lambda _: None, study=False).success


def test_pipeline_scores_its_population_into_every_destination(ready: Engine, leads: None) -> None:
    pipelines.create(
        ready,
        "everyone",
        ["customers", "leads"],
        ["Customers", "Leads"],
        destination_table="contact_personas",
        destination_csv="all.csv",
    )
    assert run_pipeline("everyone", lambda _: None).success
    population = table_rows(ready, "contacts")  # customers and leads together are everyone
    scores = stored_scores(ready, "contact_personas")
    assert len(scores) == 2 * population and not scores.duplicated(["contact_id", "persona_set"]).any()
    names = names_by_id(store.read_personas(ready, store.get(ready, "Leads").id))
    leads = scores[scores["persona_set"] == "Leads"]
    assert (leads["persona_name"] == leads["persona_id"].map(names)).all()
    csv = pd.read_csv(pipelines.get(ready, "everyone").destination_csv)
    assert len(csv) == len(scores) and list(csv.columns) == OUTPUT_COLUMNS
    assert csv["external_id"].isna().all()  # the seeded base has integer ids only
    assert run_pipeline("everyone", lambda _: None).success  # a rerun replaces, never duplicates
    assert table_rows(ready, "contact_personas") == 2 * population
    pipelines.create(
        ready, "leads only", ["leads"], ["Leads"], destination_csv="sub/leads.csv"
    )  # kept internally
    assert run_pipeline("leads only", lambda _: None).success
    leads_csv = pd.read_csv(pipelines.get(ready, "leads only").destination_csv)
    assert len(leads_csv) == table_rows(ready, "leads") == table_rows(ready, "pipeline_scores")


def test_a_run_that_dies_midway_is_completed_by_the_next(
    ready: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipelines.create(ready, "nightly", ["customers"], ["Customers"], destination_table="nightly_personas")
    real = runs.score_bucket
    monkeypatch.setenv("PERSONA_SCORE_BUCKETS", "4")

    def dies_at_bucket_three(engine, pipeline, bucket, **kwargs):  # noqa: ANN001, ANN003, ANN202
        if bucket.index == 2:
            raise RuntimeError("killed")
        return real(engine, pipeline, bucket, **kwargs)

    monkeypatch.setattr(runs, "score_bucket", dies_at_bucket_three)
    with pytest.raises(RuntimeError):
        runs.run(ready, "nightly", lambda _: None)
    half = stored_scores(ready, "nightly_personas")
    if ready.dialect.name == "postgresql":  # the buckets done wait in their shadows for the whole run
        assert half.empty
    else:
        assert 0 < len(half) < table_rows(ready, "customers") and not half["contact_id"].duplicated().any()
    monkeypatch.setattr(runs, "score_bucket", real)
    runs.run(ready, "nightly", lambda _: None)
    done = stored_scores(ready, "nightly_personas")
    assert sorted(done["contact_id"]) == sorted(
        read_frame(ready, "SELECT contact_id FROM customers")["contact_id"]
    )


def _scheduled(cron: str) -> dict:
    return dict(
        population=["customers"], payload=["Customers"], trigger="schedule", cron=cron, destination_table="t"
    )


def test_bad_pipelines_are_refused(ready: Engine) -> None:
    cases = [
        (dict(population=["nope"], payload=["Customers"], destination_table="t"), "unknown cohort 'nope'"),
        (
            dict(population=["customers"], payload=["Ghost"], destination_table="t"),
            "no persona set named 'Ghost'",
        ),
        (_scheduled("every day"), "not a valid cron expression: it has 2 fields, not five"),
        (
            _scheduled("0 25 * * *"),
            r"'0 25 \* \* \*' is not a valid cron expression: the hour is 25, outside 0-23",
        ),
        (
            dict(population=["customers"], payload=["Customers"], destination_csv="../../escape.csv"),
            "outside the export folder",
        ),
        (
            dict(population=["customers"], payload=["Customers"], destination_table="contacts"),
            "cannot be a destination table",
        ),
        (dict(population=["customers"], payload=["Customers"]), "needs a destination"),
    ]
    for kwargs, message in cases:
        with pytest.raises((PipelineError, ValueError), match=message):
            pipelines.create(ready, "bad", **kwargs)
    assert pipelines.list_all(ready) == []
    assert main(["pipeline", "run", "missing"]) == 2
    pipelines.create(ready, "Nightly", ["customers"], ["Customers"], destination_table="nightly")
    assert pipelines.get(ready, "NIGHTLY").name == "Nightly"  # unique ignoring case: found either way
    with pytest.raises(PipelineError, match="no pipeline named 'Nightyl' \\(did you mean 'Nightly'\\?\\)"):
        pipelines.get(ready, "Nightyl")


def test_scheduled_pipelines_run_once_per_due_time(ready: Engine) -> None:
    pipelines.create(
        ready,
        "minutely",
        ["customers"],
        ["Customers"],
        trigger="schedule",
        cron="* * * * *",
        destination_table="m",
    )
    assert sensor_tick(
        "scheduled_pipelines"
    ).skip_reason  # created after the last due minute: nothing due yet
    with ready.begin() as conn:
        conn.execute(sa.text("UPDATE pipelines SET created_at = :t"), {"t": dt.datetime(2026, 1, 1)})
    first, second = sensor_tick("scheduled_pipelines"), sensor_tick("scheduled_pipelines")
    assert len(first.run_requests) == 1 and first.run_requests[0].run_key.startswith("minutely@")
    assert (
        first.run_requests[0].run_key == second.run_requests[0].run_key
        or second.run_requests[0].run_key > first.run_requests[0].run_key
    )
    assert first.run_requests[0].run_config == score_run_config("minutely")


def test_changed_contacts_are_rescored_in_chunks(ready: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    pipelines.create(
        ready, "live", ["customers"], ["Customers"], trigger="on_change", destination_table="live_personas"
    )
    assert run_pipeline("live", lambda _: None).success
    before = stored_scores(ready, "live_personas").set_index("contact_id")
    start = sensor_tick("changed_contacts")
    assert start.skip_reason and start.cursor  # starts watching from now
    changed = read_frame(ready, "SELECT contact_id FROM customers ORDER BY contact_id")[
        "contact_id"
    ].tolist()[:3]
    with ready.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE contacts SET age = 80, years_at_residence = 40, updated_at = :t WHERE contact_id IN :ids"
            ).bindparams(sa.bindparam("ids", expanding=True)),
            {"t": dt.datetime(2030, 1, 1), "ids": changed},
        )
    monkeypatch.setattr(scoring_sensors, "CHANGE_CHUNK", 2)
    time.sleep(1.1)  # scored_at has one-second resolution: let a rescore be told from the first run
    first = sensor_tick("changed_contacts", start.cursor)
    second = sensor_tick("changed_contacts", first.cursor)
    assert sensor_tick("changed_contacts", second.cursor).skip_reason  # all changes taken, none twice
    for result in (first, second):
        (request,) = result.run_requests
        assert run_job(SCORE_JOB, lambda _: None, run_config=request.run_config).success
    windows = [json.loads(r.cursor) for r in (first, second)]
    assert windows[0] != windows[1]
    after = stored_scores(ready, "live_personas").set_index("contact_id")
    rescored = after.index[after["scored_at"] > before["scored_at"].reindex(after.index)]
    assert sorted(rescored) == sorted(changed)


def test_lineage_guard_with_pipelines(ready: Engine, leads: None, capsys: pytest.CaptureFixture[str]) -> None:
    pipelines.create(ready, "nightly", ["leads"], ["Customers"], destination_table="n")
    assert main(["persona-set", "delete", "Customers"]) == 2
    assert "pipeline 'nightly' (payload)" in capsys.readouterr().err
    assert main(["models", "delete", "--only", "leads"]) == 2
    err = capsys.readouterr().err
    assert "pipeline 'nightly' (population)" in err and "persona set 'Leads'" in err
    assert main(["pipeline", "delete", "nightly"]) == 0
    assert main(["persona-set", "delete", "Customers"]) == 0


def test_a_destination_belongs_to_one_pipeline(ready: Engine, leads: None) -> None:
    pipelines.create(
        ready, "first", ["customers"], ["Customers"], destination_table="shared", destination_csv="s.csv"
    )
    with pytest.raises(PipelineError, match="already the destination of pipeline 'first'"):
        pipelines.create(ready, "second", ["leads"], ["Leads"], destination_table="shared")
    with pytest.raises(PipelineError, match="CSV file .* already the destination"):
        pipelines.create(ready, "second", ["leads"], ["Leads"], destination_csv="./s.csv")
    with ready.begin() as conn:
        conn.execute(sa.text("CREATE TABLE crm_notes (contact_id BIGINT, note TEXT)"))
    with pytest.raises(PipelineError, match="not a scoring destination .* persona_set"):
        pipelines.create(ready, "second", ["leads"], ["Leads"], destination_table="crm_notes")
    assert [p.name for p in pipelines.list_all(ready)] == ["first"]
    assert main(["pipeline", "delete", "first"]) == 0
    pipelines.create(ready, "second", ["leads"], ["Leads"], destination_table="shared")  # free again


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 10**9),
    st.integers(0, 10**7),
    st.integers(0, 10**6),
    st.booleans(),
    st.booleans(),
)
def test_bucket_slices_cover_the_bucket_exactly(
    low: int, span: int, count: int, open_low: bool, open_high: bool
) -> None:
    high = low + span
    bucket = ScoringBucket(3, None if open_low else low, None if open_high else high + 1)
    slices = runs.cut_bucket(bucket, low, high, count)
    assert slices[0].low == bucket.low and slices[-1].high == bucket.high and {s.index for s in slices} == {3}
    for before, after in zip(slices, slices[1:], strict=False):
        assert (
            before.high == after.low and low < before.high <= high
        )  # contiguous, cut inside the ids present
    if len(slices) > 1:
        assert len(slices) >= max(2, -(-count // runs.SLICE_CONTACTS))


def test_runs_fan_out_over_as_many_buckets_as_configured(
    ready: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = pipelines.create(ready, "fan", ["customers"], ["Customers"], destination_table="fan_out")
    monkeypatch.setenv("PERSONA_SCORE_BUCKETS", "5")
    buckets = runs.plan(ready, pipeline)
    assert [b.index for b in buckets] == list(range(5))
    assert (
        buckets[0].low is None and buckets[-1].high is None
    )  # open ends: contacts added meanwhile are covered
    assert all(before.high == after.low for before, after in zip(buckets, buckets[1:], strict=False))
    said: list[str] = []
    scored = runs.run(ready, "fan", said.append)
    assert scored == table_rows(ready, "customers") == table_rows(ready, "fan_out")
    assert said[-1].startswith("  bucket 5/5: ")
    for wrong in ("0", "many", "2000"):
        monkeypatch.setenv("PERSONA_SCORE_BUCKETS", wrong)
        with pytest.raises(ValueError, match="PERSONA_SCORE_BUCKETS must be a whole number from 1 to 1024"):
            runs.plan(ready, pipeline)


def test_a_run_in_one_process_scores_in_one_bucket_unless_told_otherwise(
    ready: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipelines.create(ready, "single", ["customers"], ["Customers"], destination_table="single_out")
    monkeypatch.delenv("PERSONA_SCORE_BUCKETS", raising=False)
    assert score_buckets(in_process=True) == 1
    assert score_buckets() == max(2, os.cpu_count() or 2)  # runs the daemon launches fan out
    said: list[str] = []
    assert run_pipeline("single", said.append).success
    scored = [line for line in said if "contacts scored" in line and "bucket " in line]
    assert len(scored) == 1 and "bucket 0:" in scored[0], said
    assert table_rows(ready, "single_out") == table_rows(ready, "customers")
    monkeypatch.setenv("PERSONA_SCORE_BUCKETS", "3")
    said.clear()
    assert run_pipeline("single", said.append).success
    assert sum("contacts scored" in line and "bucket " in line for line in said) == 3, said
    assert table_rows(ready, "single_out") == table_rows(ready, "customers")


def test_a_new_contact_is_scored_by_the_on_change_run_without_a_cli_model_run(
    ready: Engine, leads: None
) -> None:
    pipelines.create(
        ready, "everyone live", ["all_contacts"], ["Leads"], trigger="on_change", destination_table="all_live"
    )
    assert run_pipeline("everyone live", lambda _: None).success
    start = sensor_tick("changed_contacts")
    with ready.begin() as conn:  # a new contact arrives: all_contacts, a table, does not hold it yet
        new = conn.execute(sa.text("SELECT MAX(contact_id) + 1 FROM contacts")).scalar_one()
        conn.execute(
            sa.text(
                "INSERT INTO contacts (contact_id, created_at, updated_at, age) "
                "SELECT :id, MAX(created_at), :t, 35 FROM contacts"
            ),
            {"id": new, "t": dt.datetime(2030, 1, 1)},
        )
    tick = sensor_tick("changed_contacts", start.cursor)
    (request,) = tick.run_requests
    assert run_job(SCORE_JOB, lambda _: None, run_config=request.run_config).success
    scored = stored_scores(ready, "all_live")
    assert new in set(scored["contact_id"]) and len(scored) == table_rows(ready, "contacts")
