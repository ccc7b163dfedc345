"""Concurrency and crashes: sensor ticks at once, a deletion racing a scoring run, processes killed mid-run."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest
import sqlalchemy as sa
from dagster import DagsterEventType, DagsterRunStatus, RunsFilter
from sqlalchemy.engine import Engine

from persona_pipeline.cli import main
from persona_pipeline.defs.killed_runs import fail_killed_runs
from persona_pipeline.defs.scoring.jobs import SCORE_JOB
from persona_pipeline.defs.shared.orphans import process_identity
from persona_pipeline.errors import PipelineError
from persona_pipeline.persona_sets import catalog, lifecycle
from persona_pipeline.runtime.deletion import running_scoring_runs
from persona_pipeline.runtime.instance import instance
from persona_pipeline.runtime.jobs import build_persona_set, run_pipeline
from persona_pipeline.scoring import pipelines, runs
from persona_pipeline.warehouse import persona_sets as store
from persona_pipeline.warehouse import scores
from persona_pipeline.warehouse.bulk import read_frame
from persona_pipeline.warehouse.replacement import unattached_shadows
from persona_pipeline.warehouse.tables import score_table
from persona_pipeline_tests.helpers import sensor_tick, table_rows


def test_two_sensor_ticks_at_once_ask_for_the_same_runs(ready: Engine) -> None:
    """Dagster launches a run key once; concurrent ticks must therefore produce identical keys and cursors."""
    catalog.create(ready, "Queued", "leads")
    pipelines.create(
        ready, "live", ["customers"], ["Customers"], trigger="on_change", destination_table="live_personas"
    )
    start = sensor_tick("changed_contacts")
    with ready.begin() as conn:
        conn.execute(sa.text("UPDATE contacts SET updated_at = '2031-01-01 00:00:00' WHERE contact_id < 50"))
    barrier = threading.Barrier(2)

    def tick_together(name: str, cursor: str | None = None):  # noqa: ANN202
        barrier.wait()
        return sensor_tick(name, cursor)

    for name, cursor in (
        ("queued_persona_sets", None),
        ("changed_contacts", start.cursor),
        ("fresh_payloads", None),
    ):
        with ThreadPoolExecutor(2) as pool:
            first, second = pool.map(tick_together, [name, name], [cursor, cursor])
        keys = [[r.run_key for r in t.run_requests] for t in (first, second)]
        assert keys[0] and keys[0] == keys[1], name
        assert first.cursor == second.cursor, name


def test_fresh_payloads_scores_everyone_once_per_build(ready: Engine) -> None:
    pipelines.create(ready, "adhoc", ["customers"], ["Customers"], destination_table="a")
    catalog.create(ready, "Later", "leads", n_personas=2)
    pipelines.create(ready, "waiting", ["leads"], ["Later"], trigger="on_change", destination_table="w")
    pipelines.create(ready, "live", ["customers"], ["Customers"], trigger="on_change", destination_table="l")
    (request,) = sensor_tick(
        "fresh_payloads"
    ).run_requests  # ad hoc is not rescored; "waiting" has no build yet
    assert request.run_config["ops"]["plan_buckets"]["config"] == {"pipeline": "live"}
    assert sensor_tick("fresh_payloads").run_requests[0].run_key == request.run_key  # launched once
    lifecycle.queue(ready, store.get(ready, "Customers"))
    assert build_persona_set("Customers", lambda _: None, study=False).success
    assert build_persona_set("Later", lambda _: None, study=False).success
    after = {r.run_key for r in sensor_tick("fresh_payloads").run_requests}
    assert len(after) == 2 and request.run_key not in after  # a rebuild means a new full scoring


def _block_writes(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, threading.Event]:
    """Make the next bucket write wait inside its transaction until released."""
    entered, release = threading.Event(), threading.Event()
    real = scores.write_frame

    def waiting(conn, table, frame):  # noqa: ANN001, ANN202
        entered.set()
        assert release.wait(60)
        return real(conn, table, frame)

    monkeypatch.setattr(scores, "write_frame", waiting)
    return entered, release


def test_deleting_a_pipeline_while_a_bucket_is_written_leaves_nothing_behind(
    ready: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipelines.create(ready, "csv only", ["customers"], ["Customers"], destination_csv="c.csv")
    pipeline = pipelines.get(ready, "csv only")
    bucket = runs.plan(ready, pipeline)[0]
    entered, release = _block_writes(monkeypatch)
    with ThreadPoolExecutor(2) as pool:
        scoring = pool.submit(runs.score_bucket, ready, pipeline, bucket)
        assert entered.wait(30)
        deleting = pool.submit(pipelines.delete, ready, "csv only")
        with pytest.raises(TimeoutError):
            deleting.result(timeout=1)  # the delete waits for the bucket's transaction
        release.set()
        try:  # the held range commits; a range of the bucket that comes after the delete writes nothing
            assert scoring.result(timeout=60) > 0
        except PipelineError as exc:
            assert "was deleted while this run was scoring" in str(exc)
        deleting.result(timeout=60)
    assert pipelines.list_all(ready) == [] and table_rows(ready, "pipeline_scores") == 0

    # and the other way round: a bucket that starts after the delete writes nothing
    monkeypatch.undo()
    pipelines.create(ready, "gone", ["customers"], ["Customers"], destination_table="gone_personas")
    stale = pipelines.get(ready, "gone")
    pipelines.delete(ready, "gone")
    with pytest.raises(PipelineError, match="was deleted while this run was scoring"):
        runs.score_bucket(ready, stale, bucket)
    assert table_rows(ready, "pipeline_scores") == 0 and not sa.inspect(ready).has_table("gone_personas")


def test_pipeline_delete_is_refused_while_a_run_scores_it(
    ready: Engine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pipelines.create(ready, "nightly", ["customers"], ["Customers"], destination_table="nightly_personas")
    entered, release = _block_writes(monkeypatch)
    with ThreadPoolExecutor(1) as pool:
        run = pool.submit(run_pipeline, "nightly", lambda _: None)
        assert entered.wait(60)
        assert main(["pipeline", "delete", "nightly"]) == 2
        err = capsys.readouterr().err
        assert "Dagster run" in err and "scoring it now" in err and "Nothing was deleted" in err
        assert pipelines.get(ready, "nightly")
        release.set()
        assert run.result(timeout=120).success
    assert main(["pipeline", "delete", "nightly"]) == 0
    assert table_rows(ready, "nightly_personas") == table_rows(ready, "customers")  # the user's table stays


KILL_AT_BUCKET_FIVE = """
import os, signal, sys
from persona_pipeline.cli import main
from persona_pipeline.warehouse import scores

real, seen = scores.write_frame, []

def write_then_die(conn, table, frame):
    seen.append(1)
    real(conn, table, frame)
    if len(seen) == 6:  # bucket five's rows are sent, its transaction is open: die before the commit
        os.kill(os.getpid(), signal.SIGKILL)

scores.write_frame = write_then_die
sys.exit(main(["pipeline", "run", "nightly"]))
"""


@pytest.mark.parametrize("users_table", [False, True], ids=["created", "users_table"])
def test_a_process_killed_mid_write_leaves_no_duplicates_and_the_rerun_no_gaps(
    ready: Engine, users_table: bool
) -> None:
    if users_table:  # a plain table the user made: rows are replaced slice by slice, on PostgreSQL too
        score_table("nightly_personas", sa.MetaData(), per_pipeline=False).create(ready)
    pipelines.create(ready, "nightly", ["customers"], ["Customers"], destination_table="nightly_personas")
    assert run_pipeline("nightly", lambda _: None).success
    before = read_frame(ready, "SELECT contact_id, scored_at FROM nightly_personas").set_index("contact_id")
    with ready.begin() as conn:  # make the next run's rows recognisable
        conn.execute(sa.text("UPDATE nightly_personas SET scored_at = '2000-01-01 00:00:00'"))
    killed = subprocess.run(
        [sys.executable, "-c", KILL_AT_BUCKET_FIVE],
        env={**os.environ, "PERSONA_SCORE_BUCKETS": "8"},  # 16 slices: the sixth write is mid-run
        capture_output=True,
        timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    half = read_frame(ready, "SELECT contact_id, scored_at FROM nightly_personas")
    assert not half["contact_id"].duplicated().any() and sorted(half["contact_id"]) == sorted(before.index)
    fresh = half["scored_at"].astype(str) > "2000-01-01 00:00:00"
    if ready.dialect.name == "postgresql" and not users_table:
        assert fresh.sum() == 0  # the run's rows were in its shadows, never swapped in: nothing changed
        with ready.connect() as conn:  # the dead process could not clear them
            assert unattached_shadows(conn, "nightly_personas")
    else:  # some slices committed; the killed one rolled back to the old rows
        assert 0 < fresh.sum() < len(half)

    # the killed run never reported its end; the deletion guard's look marks it failed and it holds nothing up
    (orphan,) = instance().get_runs(RunsFilter(job_name=SCORE_JOB, statuses=[DagsterRunStatus.STARTED]))
    assert running_scoring_runs("nightly") == []
    _assert_failed_as_killed(orphan.run_id)
    if ready.dialect.name == "postgresql":  # and with the run marked failed, its shadows are dropped
        with ready.connect() as conn:
            assert unattached_shadows(conn, "nightly_personas") == []

    assert main(["pipeline", "run", "nightly"]) == 0
    after = read_frame(ready, "SELECT contact_id, scored_at FROM nightly_personas")
    assert not after["contact_id"].duplicated().any()
    assert sorted(after["contact_id"]) == sorted(
        read_frame(ready, "SELECT contact_id FROM customers")["contact_id"]
    )
    assert (after["scored_at"].astype(str) > "2000-01-01 00:00:00").all()


def _assert_failed_as_killed(run_id: str) -> None:
    dagster = instance()
    assert dagster.get_run_by_id(run_id).status == DagsterRunStatus.FAILURE
    (failure,) = dagster.all_logs(run_id, of_type=DagsterEventType.RUN_FAILURE)
    assert "was killed or its machine restarted" in failure.message


KILL_IN_FIT = """
import os, signal, sys
from persona_pipeline.cli import main
from persona_pipeline.persona_sets import build

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

build.fit_personas = die
sys.exit(main(["persona-set", "build", "Customers"]))
"""


def test_a_build_killed_midway_leaves_the_set_errored_and_its_run_failed_not_running(ready: Engine) -> None:
    built = store.get(ready, "Customers").current_build
    killed = subprocess.run([sys.executable, "-c", KILL_IN_FIT], capture_output=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    assert store.get(ready, "Customers").status == "building"

    (left,) = instance().get_runs(RunsFilter(statuses=[DagsterRunStatus.STARTED]))  # by the dead process
    sensor_tick("queued_persona_sets")  # the daemon's tick notices it, without any CLI command
    _assert_failed_as_killed(left.run_id)
    record = store.get(ready, "Customers")
    assert record.status == "errored" and "killed" in (record.error or "")
    assert record.current_build == built  # the personas it had still serve
    assert fail_killed_runs(instance()) == []  # once


def test_a_process_is_known_by_its_pid_and_start_so_a_reused_pid_is_not_it() -> None:
    child = subprocess.Popen(["sleep", "60"])
    try:
        identity = process_identity(child.pid)
        assert identity is not None and identity == process_identity(child.pid)
        host, pid, started = identity.rsplit(":", 2)
        assert host.split("/")[0] == socket.gethostname() and pid == str(child.pid)
        assert started.isdigit()  # Linux: clock ticks since boot
        assert process_identity(os.getpid()) != identity
    finally:
        child.kill()
        child.wait()
    assert process_identity(child.pid) is None


SLOW_FIT = """
import sys, time
from persona_pipeline.cli import main
from persona_pipeline.persona_sets import build

real = build.fit_personas

def slow(*args, **kwargs):
    time.sleep(8)  # long enough for the test to try a second build meanwhile
    return real(*args, **kwargs)

build.fit_personas = slow
sys.exit(main(["persona-set", "build", "Customers"]))
"""


def test_a_second_build_of_a_set_being_built_is_refused_and_the_first_lands(
    ready: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    before = store.get(ready, "Customers").current_build
    first = subprocess.Popen([sys.executable, "-c", SLOW_FIT], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for _ in range(600):  # the first build is in its steps once the set says so
            if store.get(ready, "Customers").status == "building":
                break
            time.sleep(0.1)
        assert main(["persona-set", "build", "Customers"]) == 2
        err = capsys.readouterr().err
        assert "is being built or studied now" in err and len(err.strip().splitlines()) == 1
    finally:
        out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err.decode()[-2000:]
    after = store.get(ready, "Customers")
    assert after.status == "ready" and after.current_build == before + 1


KILL_IN_SCORING = """
import importlib, os, signal, sys
from persona_pipeline.cli import main

module = importlib.import_module({module!r})
real = getattr(module, {function!r})

def dies(*args, **kwargs):
    result = real(*args, **kwargs) if {after!r} else None
    os.kill(os.getpid(), signal.SIGKILL)
    return result

setattr(module, {function!r}, dies)
sys.exit(main(["pipeline", "run", "nightly"]))
"""
# where a scoring run dies: with its shadows made but nothing scored; with every bucket scored but not swapped in
SCORING_KILLS = {
    "after-plan": ("persona_pipeline.scoring.runs", "start_replacement", True),
    "before-finish": ("persona_pipeline.scoring.runs", "finish_run", False),
}


@pytest.mark.parametrize("where", list(SCORING_KILLS))
def test_a_scoring_run_killed_at_its_start_or_end_changes_nothing_and_the_rerun_completes(
    ready: Engine, where: str
) -> None:
    module, function, after = SCORING_KILLS[where]
    pipelines.create(ready, "nightly", ["customers"], ["Customers"], destination_table="nightly_personas")
    assert run_pipeline("nightly", lambda _: None).success
    with ready.begin() as conn:  # make the rows of the first run recognisable
        conn.execute(sa.text("UPDATE nightly_personas SET scored_at = '2000-01-01 00:00:00'"))
    killed = subprocess.run(
        [sys.executable, "-c", KILL_IN_SCORING.format(module=module, function=function, after=after)],
        capture_output=True,
        timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    rows = read_frame(ready, "SELECT contact_id, scored_at FROM nightly_personas")
    assert not rows["contact_id"].duplicated().any() and len(rows) == table_rows(ready, "customers")
    if ready.dialect.name == "postgresql":  # the run's rows waited in shadows: the table is as it was
        assert (pd.to_datetime(rows["scored_at"]) == pd.Timestamp("2000-01-01")).all()
    assert running_scoring_runs("nightly") == []  # the guard's look marks the dead run failed
    if ready.dialect.name == "postgresql":
        with ready.connect() as conn:
            assert unattached_shadows(conn, "nightly_personas") == []
    assert main(["pipeline", "run", "nightly"]) == 0
    after_rerun = read_frame(ready, "SELECT contact_id, scored_at FROM nightly_personas")
    assert (
        len(after_rerun) == len(rows) and (after_rerun["scored_at"].astype(str) > "2000-01-01 00:00:00").all()
    )
