"""End to end with the real daemon: `dagster-daemon run` on a PostgreSQL-backed instance does everything.

A persona set and an on-change pipeline are created with the CLI; with no other action the set is built, every
contact of the population scored, and contacts changed afterwards rescored (and only those).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from dagster import AssetKey, DagsterInstance, DagsterRunStatus, RunsFilter
from sqlalchemy.engine import Engine

from persona_pipeline.cli import main
from persona_pipeline.defs.shared.runs import UNFINISHED_RUN_STATUSES
from persona_pipeline.warehouse import persona_sets as store
from persona_pipeline.warehouse.bulk import read_frame
from persona_pipeline_tests.helpers import REPO, table_rows

TIMEOUT = 240


def _wait(what: str, condition: Callable[[], bool], daemon: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if condition():
            return
        if daemon.poll() is not None:
            pytest.fail(
                f"the daemon exited ({daemon.returncode}) waiting for {what}:\n{log.read_text()[-4000:]}"
            )
        time.sleep(1)
    pytest.fail(f"timed out after {TIMEOUT}s waiting for {what}; daemon log:\n{log.read_text()[-4000:]}")


def _runs_in_progress() -> list:
    instance = DagsterInstance.get()
    try:
        return instance.get_runs(RunsFilter(statuses=UNFINISHED_RUN_STATUSES))
    finally:
        instance.dispose()


def _scores(engine: Engine) -> pd.DataFrame:
    if not sa.inspect(engine).has_table("live_personas"):
        return pd.DataFrame(columns=["contact_id", "persona_id", "scored_at"])
    return read_frame(
        engine, "SELECT contact_id, persona_id, scored_at FROM live_personas ORDER BY contact_id"
    )


# PostgreSQL only: the daemon's part does not depend on the warehouse's engine (every step is covered on both
# elsewhere), and this is the suite's slowest case
@pytest.mark.parametrize("warehouse", ["postgres"], indirect=True)
def test_daemon_builds_scores_and_rescores_without_anyone_pressing_a_button(
    seeded: Engine,
    postgres_dagster_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PERSONA_SENSOR_INTERVAL", "2")
    assert main(["models", "run"]) == 0  # the cohort tables exist before the first sensor tick
    assert main(["persona-set", "create", "--name", "Customers", "--cohort", "customers"]) == 0
    assert (
        main(
            ["pipeline", "create", "live", "--population", "customers", "--payload", "Customers"]
            + ["--trigger", "on_change", "--table", "live_personas"]
        )
        == 0
    )
    log = tmp_path / "daemon.log"
    daemon = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", str(REPO / "workspace.yaml")],
        cwd=REPO,
        env=os.environ.copy(),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its code server and run workers go down with it
    )
    try:
        _wait(
            "the persona set to be built",
            lambda: store.get(seeded, "Customers").status == "ready",
            daemon,
            log,
        )
        population = table_rows(seeded, "customers")
        _wait("every customer to be scored", lambda: len(_scores(seeded)) == population, daemon, log)
        first = _scores(seeded).set_index("contact_id")
        assert first.index.is_unique and sorted(first.index) == sorted(
            read_frame(seeded, "SELECT contact_id FROM customers")["contact_id"]
        )

        changed = first.index[:25].tolist()
        time.sleep(1.1)  # scored_at has one-second resolution
        with seeded.begin() as conn:
            conn.execute(
                sa.text(
                    "UPDATE contacts SET age = 85, years_at_residence = 45, updated_at = :t "
                    "WHERE contact_id IN :ids"
                ).bindparams(sa.bindparam("ids", expanding=True)),
                {"t": dt.datetime.now(dt.UTC).replace(tzinfo=None), "ids": changed},
            )

        def rescored() -> list[int]:
            now = _scores(seeded).set_index("contact_id")
            newer = now["scored_at"] > first["scored_at"].reindex(now.index)
            return sorted(now.index[newer])

        _wait("the changed contacts to be rescored", lambda: rescored() == sorted(changed), daemon, log)
        time.sleep(6)  # a few more ticks: nothing else is rescored, nothing twice
        assert rescored() == sorted(changed) and len(_scores(seeded)) == population
        # let runs still finishing (a last step, the worker's exit) end before the daemon and its workers stop
        _wait("every run to finish", lambda: not _runs_in_progress(), daemon, log)
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait()

    instance = DagsterInstance.get()
    try:
        runs = instance.get_runs(RunsFilter())
        failed = [r for r in runs if r.status == DagsterRunStatus.FAILURE]
        assert not failed, [
            (
                r.job_name,
                [
                    e.message
                    for e in instance.all_logs(r.run_id)
                    if e.is_dagster_event and e.dagster_event.is_failure
                ],
            )
            for r in failed
        ]
        keys = [r.tags.get("dagster/run_key") for r in runs if r.tags.get("dagster/run_key")]
        assert len(keys) == len(set(keys))  # every request launched once
        assert sum(r.job_name == "build_persona_set" for r in runs) == 1
        assert sum(r.job_name == "score_pipeline" for r in runs) >= 2  # the full scoring, then the changes
        # the build materialized the Analysis once; no automation run computed it again (the report is not
        # held to this: under a loaded host a second, eager report run was seen, cause not yet found)
        records = instance.fetch_materializations(AssetKey("persona_analysis"), limit=10).records
        assert len(records) == 1, [(r.run_id, r.timestamp) for r in records]
    finally:
        instance.dispose()


def test_every_job_the_daemon_launches_forks_its_steps_from_a_server_that_imported_our_code() -> None:
    """Otherwise each step re-imports everything (about 5 s of CPU); a new job must not fall back to that.

    The forkserver must name our module: without `preload_modules` Dagster preloads nothing at all.
    """
    from dagster._core.system_config.objects import ResolvedRunConfig

    from persona_pipeline.definitions import defs
    from persona_pipeline.defs.scoring.jobs import SCORE_JOB, score_run_config
    from persona_pipeline.defs.shared.executor import DEFINITIONS_MODULE

    jobs = [job for job in defs.resolve_all_job_defs() if not job.name.startswith("__")]
    assert {job.name for job in jobs} >= {"build_persona_set", "sql_models", SCORE_JOB}
    for job in jobs:
        run_config = score_run_config("any") if job.name == SCORE_JOB else {}
        execution = ResolvedRunConfig.build(job, run_config).execution.execution_engine_config
        assert execution["start_method"] == {"forkserver": {"preload_modules": [DEFINITIONS_MODULE]}}, (
            job.name
        )
