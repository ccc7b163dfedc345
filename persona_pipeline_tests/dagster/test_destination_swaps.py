"""Full runs into a destination we create on PostgreSQL: rows swapped in whole as partitions (SQLite: in place)."""

from __future__ import annotations

import datetime as dt
import threading

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from persona_pipeline.errors import PipelineError
from persona_pipeline.scoring import pipelines, runs
from persona_pipeline.warehouse import scores
from persona_pipeline.warehouse.bulk import read_frame
from persona_pipeline.warehouse.replacement import (
    Replacement,
    prepare_shadow,
    shadow_name,
    unattached_shadows,
)
from persona_pipeline_tests.helpers import stored_scores, table_rows


def _partitions(engine: Engine, table: str) -> list[str]:
    sql = "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(:t)"
    with engine.connect() as conn:
        return sorted(conn.execute(sa.text(sql), {"t": table}).scalars())


def test_a_full_run_swaps_its_rows_in_whole_and_keeps_rows_scored_meanwhile(ready: Engine) -> None:
    pipeline = pipelines.create(
        ready, "nightly", ["customers"], ["Customers"], destination_table="nightly_out"
    )
    customers = table_rows(ready, "customers")
    buckets = runs.plan(ready, pipeline, 3)
    replacement = runs.start_replacement(ready, pipeline)
    if ready.dialect.name != "postgresql":  # SQLite has no partitions: rows are replaced slice by slice
        assert replacement is None
        assert runs.run(ready, "nightly", lambda _: None) == customers == table_rows(ready, "nightly_out")
        return
    with ready.begin() as conn:  # a view and an index of the user's own over the destination
        conn.execute(sa.text("CREATE VIEW nightly_report AS SELECT persona_name FROM nightly_out"))
        conn.execute(sa.text("CREATE INDEX nightly_by_persona ON nightly_out (persona_id)"))
    for bucket in buckets:
        runs.score_bucket(ready, pipeline, bucket, replacement=replacement)
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
    scores.store(ready, pipeline, newer, buckets[0], [someone])
    runs.finish_run(ready, pipeline, replacement, buckets)

    done = stored_scores(ready, "nightly_out")
    assert len(done) == customers and not done["contact_id"].duplicated().any()
    assert done.set_index("contact_id").loc[someone, "persona_name"] == "Rescored meanwhile"
    assert table_rows(ready, "nightly_report") == customers  # the view (and grants) stay with the parent
    partitions = _partitions(ready, "nightly_out")
    assert partitions == sorted(shadow_name("nightly_out", replacement.token, b.index) for b in buckets)
    with ready.connect() as conn:  # each partition carries both indexes, so lookups stay indexed
        indexed = conn.execute(
            sa.text("SELECT indexdef FROM pg_indexes WHERE tablename = :t"), {"t": partitions[0]}
        )
        assert sorted("(persona_id)" in d for d in indexed.scalars()) == [False, True]

    # a run that finds its pipeline deleted swaps nothing in and clears its shadows
    again = runs.start_replacement(ready, pipeline)
    for bucket in buckets:
        runs.score_bucket(ready, pipeline, bucket, replacement=again)
    pipelines.delete(ready, "nightly")
    with ready.connect() as conn:  # the delete drops them (no run of the pipeline will ever swap them in)
        assert unattached_shadows(conn, "nightly_out") == []
    with pytest.raises(PipelineError, match="was deleted while this run was scoring"):
        runs.finish_run(ready, pipeline, again, buckets)
    with ready.connect() as conn:
        assert unattached_shadows(conn, "nightly_out") == []
    assert len(stored_scores(ready, "nightly_out")) == customers  # the user's table keeps its last scores


def test_shadows_of_dead_runs_are_cleared_by_a_later_run_once_an_hour_old(ready: Engine) -> None:
    if (
        ready.dialect.name != "postgresql"
    ):  # no shadows on SQLite: a dead run's slices were committed in place
        pipeline = pipelines.create(ready, "n", ["customers"], ["Customers"], destination_table="n_out")
        runs.plan(ready, pipeline)
        assert runs.start_replacement(ready, pipeline) is None
        return
    pipeline = pipelines.create(
        ready, "nightly", ["customers"], ["Customers"], destination_table="nightly_out"
    )
    buckets = runs.plan(ready, pipeline, 2)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    dead = Replacement("deadbeef", now - dt.timedelta(hours=2))
    recent = Replacement("0a1b2c3d", now - dt.timedelta(minutes=10))  # maybe still running: kept
    with ready.begin() as conn:
        conn.execute(sa.text("CREATE TABLE nightly_out_notes (note text)"))  # not a shadow: never touched
        for replacement in (dead, recent):
            prepare_shadow(conn, "nightly_out", replacement, buckets[0])
    runs.run(ready, "nightly", lambda _: None)
    with ready.connect() as conn:
        left = [name for name, _ in unattached_shadows(conn, "nightly_out")]
    assert left == [shadow_name("nightly_out", recent.token, buckets[0].index)]
    assert sa.inspect(ready).has_table("nightly_out_notes")
    assert table_rows(ready, "nightly_out") == table_rows(ready, "customers")


def test_a_run_whose_bucket_fails_drops_its_shadows_and_changes_nothing(
    ready: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from persona_pipeline.runtime.jobs import run_pipeline

    pipelines.create(ready, "nightly", ["customers"], ["Customers"], destination_table="nightly_out")
    assert run_pipeline("nightly", lambda _: None).success
    before = stored_scores(ready, "nightly_out").sort_values("contact_id", ignore_index=True)
    real, writes = scores.write_frame, []

    def fail_on_the_second_write(conn, table, frame):  # noqa: ANN001, ANN202
        writes.append(table)
        if len(writes) == 2:  # a bucket has two slices at least: the first is in its shadow
            raise OSError("disk full while writing scores")
        return real(conn, table, frame)

    monkeypatch.setattr(scores, "write_frame", fail_on_the_second_write)
    report = run_pipeline("nightly", lambda _: None)
    assert not report.success and "disk full while writing scores" in report.message
    after = stored_scores(ready, "nightly_out").sort_values("contact_id", ignore_index=True)
    assert not after["contact_id"].duplicated().any() and len(after) == len(before)
    if ready.dialect.name == "postgresql":  # the rows went to a shadow, which the failure hook dropped
        assert writes[0] != "nightly_out"
        with ready.connect() as conn:
            assert unattached_shadows(conn, "nightly_out") == []
        assert after.equals(before)


def test_a_swap_waits_for_queries_on_the_destination_and_gives_up_cleanly(
    ready: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = pipelines.create(
        ready, "nightly", ["customers"], ["Customers"], destination_table="nightly_out"
    )
    customers = table_rows(ready, "customers")
    if ready.dialect.name != "postgresql":  # SQLite: no swap, each slice's transaction waits its turn
        assert runs.run(ready, "nightly", lambda _: None) == customers == table_rows(ready, "nightly_out")
        return
    runs.run(ready, "nightly", lambda _: None)
    before = stored_scores(ready, "nightly_out")
    monkeypatch.setattr(runs, "SWAP_LOCK_WAIT", dt.timedelta(milliseconds=200))
    monkeypatch.setattr(runs, "SWAP_ATTEMPTS", 3)

    def scored_run() -> tuple[Replacement, list]:
        buckets = runs.plan(ready, pipeline, 2)
        replacement = runs.start_replacement(ready, pipeline)
        for bucket in buckets:
            runs.score_bucket(ready, pipeline, bucket, replacement=replacement)
        return replacement, buckets

    replacement, buckets = scored_run()
    with ready.connect() as reader:  # a long report query holds the table for the whole swap budget
        reader.execute(sa.text("SELECT count(*) FROM nightly_out"))
        with pytest.raises(PipelineError, match="stayed in use by other queries through 3 tries"):
            runs.finish_run(ready, pipeline, replacement, buckets)
        reader.rollback()
    pd.testing.assert_frame_equal(
        stored_scores(ready, "nightly_out").sort_values("contact_id", ignore_index=True),
        before.sort_values("contact_id", ignore_index=True),
    )
    with ready.connect() as conn:
        assert unattached_shadows(conn, "nightly_out") == []  # the discarded run's shadows are gone

    # a query that ends within the budget only delays the swap
    monkeypatch.setattr(runs, "SWAP_ATTEMPTS", 30)
    replacement, buckets = scored_run()
    reader = ready.connect()
    reader.execute(sa.text("SELECT count(*) FROM nightly_out"))
    timer = threading.Timer(1.0, reader.close)  # returns the connection, ending its transaction
    timer.start()
    runs.finish_run(ready, pipeline, replacement, buckets)
    timer.join()
    assert _partitions(ready, "nightly_out") == sorted(
        shadow_name("nightly_out", replacement.token, b.index) for b in buckets
    )
    assert len(stored_scores(ready, "nightly_out")) == customers


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
    runs.plan(ready, pipeline)
    assert runs.start_replacement(ready, pipeline) is None
    for _ in range(2):  # the second run replaces the first's rows
        assert runs.run(ready, "theirs", lambda _: None) == table_rows(ready, "customers")
        assert table_rows(ready, "theirs") == table_rows(ready, "customers")
    if postgres:
        assert _partitions(ready, "theirs") == ["theirs_all"]
