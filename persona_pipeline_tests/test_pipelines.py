"""Scoring pipelines on SQLite and PostgreSQL: runs, idempotence, triggers, destinations and bad input."""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import time

import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from persona_pipeline import pipelines
from persona_pipeline.cli import main
from persona_pipeline.defs import pipeline_defs
from persona_pipeline.runner import _run, build_persona_set, run_pipeline
from persona_pipeline.settings import score_buckets
from persona_pipeline.warehouse import persona_sets as store
from persona_pipeline.warehouse.bulk import read_frame
from persona_pipeline.warehouse.replacement import (
    Replacement,
    prepare_shadow,
    shadow_name,
    unattached_shadows,
)
from persona_pipeline_tests.conftest import sensor_tick, table_rows


@pytest.fixture
def ready(seeded: Engine) -> Engine:
    for name, cohort in (("Customers", "customers"), ("Leads", "leads")):
        store.create(seeded, name, cohort)
        assert build_persona_set(name, lambda _: None, study=False).success
    return seeded


def _scores(engine: Engine, table: str = "pipeline_scores") -> pd.DataFrame:
    return read_frame(
        engine,
        f'SELECT contact_id, persona_set, persona_id, persona_name, confidence, scored_at FROM "{table}"',
    )


def test_pipeline_scores_its_population_into_every_destination(ready: Engine) -> None:
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
    scores = _scores(ready, "contact_personas")
    assert len(scores) == 2 * population and not scores.duplicated(["contact_id", "persona_set"]).any()
    names = {p["persona_id"]: p["name"] for p in store.read_personas(ready, store.get(ready, "Leads").id)}
    leads = scores[scores["persona_set"] == "Leads"]
    assert (leads["persona_name"] == leads["persona_id"].map(names)).all()
    csv = pd.read_csv(pipelines.get(ready, "everyone").destination_csv)
    assert len(csv) == len(scores) and list(csv.columns) == pipelines.SCORE_COLUMNS
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
    real = pipelines.score_bucket
    monkeypatch.setenv("PERSONA_SCORE_BUCKETS", "4")

    def dies_at_bucket_three(engine, pipeline, bucket, **kwargs):  # noqa: ANN001, ANN003, ANN202
        if bucket[0] == 2:
            raise RuntimeError("killed")
        return real(engine, pipeline, bucket, **kwargs)

    monkeypatch.setattr(pipelines, "score_bucket", dies_at_bucket_three)
    with pytest.raises(RuntimeError):
        pipelines.run(ready, "nightly", lambda _: None)
    half = _scores(ready, "nightly_personas")
    if ready.dialect.name == "postgresql":  # the buckets done wait in their shadows for the whole run
        assert half.empty
    else:
        assert 0 < len(half) < table_rows(ready, "customers") and not half["contact_id"].duplicated().any()
    monkeypatch.setattr(pipelines, "score_bucket", real)
    pipelines.run(ready, "nightly", lambda _: None)
    done = _scores(ready, "nightly_personas")
    assert sorted(done["contact_id"]) == sorted(
        read_frame(ready, "SELECT contact_id FROM customers")["contact_id"]
    )


def test_bad_pipelines_are_refused(ready: Engine) -> None:
    cases = [
        (dict(population=["nope"], payload=["Customers"], destination_table="t"), "unknown cohort 'nope'"),
        (
            dict(population=["customers"], payload=["Ghost"], destination_table="t"),
            "no persona set named 'Ghost'",
        ),
        (
            dict(
                population=["customers"],
                payload=["Customers"],
                trigger="schedule",
                cron="every day",
                destination_table="t",
            ),
            "not a valid cron",
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
        with pytest.raises((pipelines.PipelineError, ValueError), match=message):
            pipelines.create(ready, "bad", **kwargs)
    assert pipelines.list_all(ready) == []
    assert main(["pipeline", "run", "missing"]) == 2


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
    assert first.run_requests[0].run_config == pipeline_defs.score_run_config("minutely")


def test_changed_contacts_are_rescored_in_chunks(ready: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    pipelines.create(
        ready, "live", ["customers"], ["Customers"], trigger="on_change", destination_table="live_personas"
    )
    assert run_pipeline("live", lambda _: None).success
    before = _scores(ready, "live_personas").set_index("contact_id")
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
    monkeypatch.setattr(pipeline_defs, "CHANGE_CHUNK", 2)
    time.sleep(1.1)  # scored_at has one-second resolution: let a rescore be told from the first run
    first = sensor_tick("changed_contacts", start.cursor)
    second = sensor_tick("changed_contacts", first.cursor)
    assert sensor_tick("changed_contacts", second.cursor).skip_reason  # all changes taken, none twice
    for result in (first, second):
        (request,) = result.run_requests
        assert _run(pipeline_defs.SCORE_JOB, lambda _: None, run_config=request.run_config).success
    windows = [json.loads(r.cursor) for r in (first, second)]
    assert windows[0] != windows[1]
    after = _scores(ready, "live_personas").set_index("contact_id")
    rescored = after.index[after["scored_at"] > before["scored_at"].reindex(after.index)]
    assert sorted(rescored) == sorted(changed)


def test_lineage_guard_with_pipelines(ready: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    pipelines.create(ready, "nightly", ["leads"], ["Customers"], destination_table="n")
    assert main(["persona-set", "delete", "Customers"]) == 2
    assert "pipeline 'nightly' (payload)" in capsys.readouterr().err
    assert main(["models", "delete", "--only", "leads"]) == 2
    err = capsys.readouterr().err
    assert "pipeline 'nightly' (population)" in err and "persona set 'Leads'" in err
    assert main(["pipeline", "delete", "nightly"]) == 0
    assert main(["persona-set", "delete", "Customers"]) == 0


def test_a_destination_belongs_to_one_pipeline(ready: Engine) -> None:
    pipelines.create(
        ready, "first", ["customers"], ["Customers"], destination_table="shared", destination_csv="s.csv"
    )
    with pytest.raises(pipelines.PipelineError, match="already the destination of pipeline 'first'"):
        pipelines.create(ready, "second", ["leads"], ["Leads"], destination_table="shared")
    with pytest.raises(pipelines.PipelineError, match="CSV file .* already the destination"):
        pipelines.create(ready, "second", ["leads"], ["Leads"], destination_csv="./s.csv")
    with ready.begin() as conn:
        conn.execute(sa.text("CREATE TABLE crm_notes (contact_id BIGINT, note TEXT)"))
    with pytest.raises(pipelines.PipelineError, match="not a scoring destination .* persona_set"):
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
    bucket = (3, None if open_low else low, None if open_high else high + 1)
    slices = pipelines.cut_bucket(bucket, low, high, count)
    assert slices[0][1] == bucket[1] and slices[-1][2] == bucket[2] and {s[0] for s in slices} == {3}
    for before, after in zip(slices, slices[1:], strict=False):
        assert before[2] == after[1] and low < before[2] <= high  # contiguous, cut inside the ids present
    if len(slices) > 1:
        assert len(slices) >= max(2, -(-count // pipelines.SLICE_CONTACTS))


def test_runs_fan_out_over_as_many_buckets_as_configured(
    ready: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = pipelines.create(ready, "fan", ["customers"], ["Customers"], destination_table="fan_out")
    monkeypatch.setenv("PERSONA_SCORE_BUCKETS", "5")
    buckets = pipelines.plan(ready, pipeline)
    assert [b[0] for b in buckets] == list(range(5))
    assert buckets[0][1] is None and buckets[-1][2] is None  # open ends: contacts added meanwhile are covered
    assert all(before[2] == after[1] for before, after in zip(buckets, buckets[1:], strict=False))
    said: list[str] = []
    scored = pipelines.run(ready, "fan", said.append)
    assert scored == table_rows(ready, "customers") == table_rows(ready, "fan_out")
    assert said[-1].startswith("  bucket 5/5: ")
    for wrong in ("0", "many", "2000"):
        monkeypatch.setenv("PERSONA_SCORE_BUCKETS", wrong)
        with pytest.raises(ValueError, match="PERSONA_SCORE_BUCKETS must be a whole number from 1 to 1024"):
            pipelines.plan(ready, pipeline)


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


def test_a_new_contact_is_scored_by_the_on_change_run_without_a_cli_model_run(ready: Engine) -> None:
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
    assert _run(pipeline_defs.SCORE_JOB, lambda _: None, run_config=request.run_config).success
    scored = _scores(ready, "all_live")
    assert new in set(scored["contact_id"]) and len(scored) == table_rows(ready, "contacts")


def _partitions(engine: Engine, table: str) -> list[str]:
    sql = "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(:t)"
    with engine.connect() as conn:
        return sorted(conn.execute(sa.text(sql), {"t": table}).scalars())


def test_a_full_run_swaps_its_rows_in_whole_and_keeps_rows_scored_meanwhile(ready: Engine) -> None:
    pipeline = pipelines.create(
        ready, "nightly", ["customers"], ["Customers"], destination_table="nightly_out"
    )
    customers = table_rows(ready, "customers")
    buckets = pipelines.plan(ready, pipeline, 3)
    replacement = pipelines.start_replacement(ready, pipeline)
    if ready.dialect.name != "postgresql":  # SQLite has no partitions: rows are replaced slice by slice
        assert replacement is None
        assert (
            pipelines.run(ready, "nightly", lambda _: None) == customers == table_rows(ready, "nightly_out")
        )
        return
    with ready.begin() as conn:  # a view and an index of the user's own over the destination
        conn.execute(sa.text("CREATE VIEW nightly_report AS SELECT persona_name FROM nightly_out"))
        conn.execute(sa.text("CREATE INDEX nightly_by_persona ON nightly_out (persona_id)"))
    for bucket in buckets:
        pipelines.score_bucket(ready, pipeline, bucket, replacement=replacement)
    assert table_rows(ready, "nightly_out") == 0  # nothing shows until the swap
    # meanwhile the on-change sensor rescores a contact: its row is newer than this run's and must survive
    someone = int(read_frame(ready, "SELECT MIN(contact_id) AS c FROM customers")["c"].iloc[0])
    newer = pd.DataFrame(
        {
            "contact_id": [someone],
            "persona_set": ["Customers"],
            "persona_id": [99],
            "persona_name": ["Rescored meanwhile"],
            "confidence": [1.0],
            "scored_at": [replacement.since + dt.timedelta(seconds=1)],
        }
    )
    pipelines._store(ready, pipeline, newer, buckets[0], [someone])
    pipelines.finish_run(ready, pipeline, replacement, buckets)

    done = _scores(ready, "nightly_out")
    assert len(done) == customers and not done["contact_id"].duplicated().any()
    assert done.set_index("contact_id").loc[someone, "persona_name"] == "Rescored meanwhile"
    assert table_rows(ready, "nightly_report") == customers  # the view (and grants) stay with the parent
    partitions = _partitions(ready, "nightly_out")
    assert partitions == sorted(shadow_name("nightly_out", replacement.token, b[0]) for b in buckets)
    with ready.connect() as conn:  # each partition carries both indexes, so lookups stay indexed
        indexed = conn.execute(
            sa.text("SELECT indexdef FROM pg_indexes WHERE tablename = :t"), {"t": partitions[0]}
        )
        assert sorted("(persona_id)" in d for d in indexed.scalars()) == [False, True]

    # a run that finds its pipeline deleted swaps nothing in and clears its shadows
    again = pipelines.start_replacement(ready, pipeline)
    for bucket in buckets:
        pipelines.score_bucket(ready, pipeline, bucket, replacement=again)
    pipelines.delete(ready, "nightly")
    with pytest.raises(pipelines.PipelineError, match="was deleted while this run was scoring"):
        pipelines.finish_run(ready, pipeline, again, buckets)
    with ready.connect() as conn:
        assert unattached_shadows(conn, "nightly_out") == []
    assert len(_scores(ready, "nightly_out")) == customers  # the user's table keeps its last scores


def test_shadows_of_dead_runs_are_cleared_by_a_later_run_once_an_hour_old(ready: Engine) -> None:
    if (
        ready.dialect.name != "postgresql"
    ):  # no shadows on SQLite: a dead run's slices were committed in place
        pipeline = pipelines.create(ready, "n", ["customers"], ["Customers"], destination_table="n_out")
        pipelines.plan(ready, pipeline)
        assert pipelines.start_replacement(ready, pipeline) is None
        return
    pipeline = pipelines.create(
        ready, "nightly", ["customers"], ["Customers"], destination_table="nightly_out"
    )
    buckets = pipelines.plan(ready, pipeline, 2)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    dead = Replacement("deadbeef", now - dt.timedelta(hours=2))
    recent = Replacement("0a1b2c3d", now - dt.timedelta(minutes=10))  # maybe still running: kept
    with ready.begin() as conn:
        conn.execute(sa.text("CREATE TABLE nightly_out_notes (note text)"))  # not a shadow: never touched
        for replacement in (dead, recent):
            prepare_shadow(conn, "nightly_out", replacement, buckets[0])
    pipelines.run(ready, "nightly", lambda _: None)
    with ready.connect() as conn:
        left = [name for name, _ in unattached_shadows(conn, "nightly_out")]
    assert left == [shadow_name("nightly_out", recent.token, buckets[0][0])]
    assert sa.inspect(ready).has_table("nightly_out_notes")
    assert table_rows(ready, "nightly_out") == table_rows(ready, "customers")


def test_a_swap_waits_for_queries_on_the_destination_and_gives_up_cleanly(
    ready: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = pipelines.create(
        ready, "nightly", ["customers"], ["Customers"], destination_table="nightly_out"
    )
    customers = table_rows(ready, "customers")
    if ready.dialect.name != "postgresql":  # SQLite: no swap, each slice's transaction waits its turn
        assert (
            pipelines.run(ready, "nightly", lambda _: None) == customers == table_rows(ready, "nightly_out")
        )
        return
    pipelines.run(ready, "nightly", lambda _: None)
    before = _scores(ready, "nightly_out")
    monkeypatch.setattr(pipelines, "SWAP_LOCK_WAIT", dt.timedelta(milliseconds=200))
    monkeypatch.setattr(pipelines, "SWAP_ATTEMPTS", 3)

    def scored_run() -> tuple[pipelines.Replacement, list]:
        buckets = pipelines.plan(ready, pipeline, 2)
        replacement = pipelines.start_replacement(ready, pipeline)
        for bucket in buckets:
            pipelines.score_bucket(ready, pipeline, bucket, replacement=replacement)
        return replacement, buckets

    replacement, buckets = scored_run()
    with ready.connect() as reader:  # a long report query holds the table for the whole swap budget
        reader.execute(sa.text("SELECT count(*) FROM nightly_out"))
        with pytest.raises(pipelines.PipelineError, match="stayed in use by other queries through 3 tries"):
            pipelines.finish_run(ready, pipeline, replacement, buckets)
        reader.rollback()
    pd.testing.assert_frame_equal(
        _scores(ready, "nightly_out").sort_values("contact_id", ignore_index=True),
        before.sort_values("contact_id", ignore_index=True),
    )
    with ready.connect() as conn:
        assert unattached_shadows(conn, "nightly_out") == []  # the discarded run's shadows are gone

    # a query that ends within the budget only delays the swap
    monkeypatch.setattr(pipelines, "SWAP_ATTEMPTS", 30)
    replacement, buckets = scored_run()
    reader = ready.connect()
    reader.execute(sa.text("SELECT count(*) FROM nightly_out"))
    timer = threading.Timer(1.0, reader.close)  # returns the connection, ending its transaction
    timer.start()
    pipelines.finish_run(ready, pipeline, replacement, buckets)
    timer.join()
    assert _partitions(ready, "nightly_out") == sorted(
        shadow_name("nightly_out", replacement.token, b[0]) for b in buckets
    )
    assert len(_scores(ready, "nightly_out")) == customers


def test_a_users_table_partitioned_otherwise_is_written_in_place(ready: Engine) -> None:
    columns = "contact_id BIGINT NOT NULL, persona_set VARCHAR(200) NOT NULL, persona_id INTEGER NOT NULL, "
    columns += "persona_name VARCHAR(200) NOT NULL, confidence FLOAT NOT NULL, scored_at TIMESTAMP NOT NULL"
    postgres = ready.dialect.name == "postgresql"
    with ready.begin() as conn:
        if postgres:  # theirs, partitioned by persona set: a swap by contact_id range would not fit it
            conn.execute(sa.text(f"CREATE TABLE theirs ({columns}) PARTITION BY LIST (persona_set)"))
            conn.execute(sa.text("CREATE TABLE theirs_all PARTITION OF theirs DEFAULT"))
        else:
            conn.execute(sa.text(f"CREATE TABLE theirs ({columns})"))
    pipeline = pipelines.create(ready, "theirs", ["customers"], ["Customers"], destination_table="theirs")
    pipelines.plan(ready, pipeline)
    assert pipelines.start_replacement(ready, pipeline) is None
    for _ in range(2):  # the second run replaces the first's rows
        assert pipelines.run(ready, "theirs", lambda _: None) == table_rows(ready, "customers")
        assert table_rows(ready, "theirs") == table_rows(ready, "customers")
    if postgres:
        assert _partitions(ready, "theirs") == ["theirs_all"]
