"""The command line, and a build whose Dagster instance keeps its runs in PostgreSQL (deploy/dagster.yaml)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from dagster import DagsterInstance, DagsterRunStatus, EventLogEntry
from sqlalchemy.engine import Engine

from persona_pipeline.cli import main
from persona_pipeline.persona_sets import catalog, lifecycle
from persona_pipeline.runtime.jobs import build_persona_set
from persona_pipeline.warehouse import persona_sets as store
from persona_pipeline.warehouse.memberships import read_memberships
from persona_pipeline.warehouse.tables import MEMBERSHIP_KEY, ensure_catalog_tables
from persona_pipeline_tests.helpers import PG_URL


def test_demo_then_list_and_show(warehouse: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--contacts", "3000", "--days", "10"]) == 0
    out = capsys.readouterr().out
    assert "ready in" in out and "[1]" in out and "rule:" in out
    assert "report: " in out and "overview: " in out  # the flow snapshots landed and the report followed
    assert main(["persona-set", "list"]) == 0
    listing = capsys.readouterr().out
    row = next(line for line in listing.splitlines() if line.startswith("Customers"))
    assert "customers" in row and "ready" in row and row.split()[1].isdigit()
    assert main(["persona-set", "show", "Customers"]) == 0
    assert "stability" in capsys.readouterr().out


def test_cli_errors_are_clear_and_change_nothing(
    warehouse: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["persona-set", "create", "--name", "x", "--cohort", "customers"]) == 2
    assert "run `persona-pipeline seed`" in capsys.readouterr().err
    assert main(["seed", "--contacts", "1500", "--days", "5"]) == 0
    assert main(["persona-set", "create", "--name", "x", "--cohort", "nope"]) == 2
    assert "unknown cohort 'nope'" in capsys.readouterr().err
    assert (
        main(["persona-set", "create", "--name", "x", "--cohort", "customers", "--traits", "age,shoe_size"])
        == 2
    )
    assert "'shoe_size'" in capsys.readouterr().err
    assert main(["persona-set", "create", "--name", "x", "--cohort", "customers", "--personas", "13"]) == 2
    assert "between 2 and 12" in capsys.readouterr().err
    assert store.list_all(warehouse) == []
    hostile = "<script>alert(1)</script>"
    assert main(["persona-set", "create", "--name", hostile, "--cohort", "customers", "--personas", "2"]) == 0
    assert main(["persona-set", "show", hostile]) == 0
    assert hostile in capsys.readouterr().out
    assert main(["persona-set", "show", "missing"]) == 2
    assert "no persona set named 'missing'" in capsys.readouterr().err
    assert main(["persona-set", "show", hostile.upper()]) == 0  # unique ignoring case: found either way
    assert hostile in capsys.readouterr().out
    assert main(["persona-set", "show", "<script>alert(1)</scrpt>"]) == 2  # a typo: the nearest name
    assert f"(did you mean {hostile!r}?)" in capsys.readouterr().err
    assert main(["persona-set", "create", "--name", "y", "--cohort", "customrs"]) == 2
    assert "unknown cohort 'customrs' (did you mean 'customers'?)" in capsys.readouterr().err


def test_build_with_dagster_storage_on_postgres(seeded: Engine, postgres_dagster_home: Path) -> None:
    catalog.create(seeded, "Customers", "customers")
    report = build_persona_set("Customers", lambda _: None)
    assert report.success, report.message
    instance = DagsterInstance.get()
    try:
        assert "Postgres" in type(instance.run_storage).__name__
        run = instance.get_run_by_id(report.run_id)
        assert run is not None and run.status == DagsterRunStatus.SUCCESS
        assert instance.get_dynamic_partitions("persona_sets") == ["set-1"]
    finally:
        instance.dispose()
    database = os.environ["DAGSTER_PG_URL"].rsplit("/", 1)[1]
    engine = sa.create_engine(PG_URL.rsplit("/", 1)[0] + f"/{database}")
    with engine.connect() as conn:
        runs = conn.execute(sa.text("SELECT COUNT(*) FROM runs")).scalar_one()
    engine.dispose()
    assert runs >= 2  # the cohort's SQL models and the build, both recorded in PostgreSQL


def test_memberships_stored_under_the_old_key_keep_every_row_under_the_new_one(warehouse: Engine) -> None:
    shipped = sa.MetaData()  # the table as it shipped before: keyed by set and contact
    old = sa.Table(
        "persona_memberships",
        shipped,
        sa.Column("persona_set_id", sa.Integer, primary_key=True),
        sa.Column("contact_id", sa.BigInteger, primary_key=True),
        sa.Column("persona_id", sa.Integer, nullable=False),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("build", sa.Integer, nullable=False),
    )
    shipped.create_all(warehouse)
    rows = [(1, 10, 2, 0.5, 3), (1, 11, 1, 0.25, 3), (2, 10, 4, 0.75, 1)]
    keys = ["persona_set_id", "contact_id", "persona_id", "confidence", "build"]
    with warehouse.begin() as conn:
        conn.execute(old.insert(), [dict(zip(keys, r, strict=True)) for r in rows])
    ensure_catalog_tables(warehouse)
    key = sa.inspect(warehouse).get_pk_constraint("persona_memberships")["constrained_columns"]
    assert tuple(key) == MEMBERSHIP_KEY
    with warehouse.begin() as conn:
        stored = conn.execute(
            sa.text(f"SELECT {', '.join(keys)} FROM persona_memberships ORDER BY 1, 2")
        ).all()
        assert [tuple(r) for r in stored] == rows
        # the next build of the same contacts goes in beside the old one's deleted rows, under its own keys
        conn.execute(sa.text("DELETE FROM persona_memberships WHERE persona_set_id = 1"))
        named = ", ".join(keys)  # the new table has more columns (the fingerprint) than the old one
        conn.execute(sa.text(f"INSERT INTO persona_memberships ({named}) VALUES (1, 10, 3, 0.5, 4)"))  # noqa: S608
    with warehouse.connect() as conn:
        builds = conn.execute(
            sa.text("SELECT persona_set_id, build FROM persona_memberships ORDER BY 1")
        ).all()
    assert [tuple(b) for b in builds] == [(1, 4), (2, 1)]


def test_readers_see_a_sets_current_build_only_until_the_next_one_is_switched_in(warehouse: Engine) -> None:
    import pandas as pd

    from persona_pipeline.warehouse.bulk import write_frame

    record = lifecycle.create_queued(warehouse, "Switch", "all_contacts", None, None, 0, None, True)

    def build(persona: int, contacts: range) -> pd.DataFrame:
        return pd.DataFrame({"contact_id": list(contacts), "persona_id": persona, "confidence": 0.5})

    assert lifecycle.land_memberships(warehouse, record.id, 1, build(1, range(1, 101))) == 100
    # an attempt at build 2 that died after writing half its rows, before its switch
    died = build(2, range(1, 51)).assign(persona_set_id=record.id, build=2)
    with warehouse.begin() as conn:
        write_frame(conn, "persona_memberships", died)
    seen = read_memberships(warehouse, record.id)
    assert len(seen) == 100 and set(seen["persona_id"]) == {1}
    assert lifecycle.land_memberships(warehouse, record.id, 2, build(3, range(1, 121))) == 120
    seen = read_memberships(warehouse, record.id)
    assert len(seen) == 120 and set(seen["persona_id"]) == {3} and seen["contact_id"].is_unique
    with warehouse.connect() as conn:
        stored = conn.execute(sa.text("SELECT build, COUNT(*) FROM persona_memberships GROUP BY build")).all()
    assert [tuple(r) for r in stored] == [(2, 120)]  # the old build and the dead attempt's rows are gone
    assert store.get_by_id(warehouse, record.id).current_build == 2


@pytest.mark.parametrize("warehouse", ["sqlite"], indirect=True)  # nothing here depends on the engine
def test_the_installed_command_leaves_its_output_whole_and_its_exit_code(
    ready: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`persona-pipeline` ends without Python's module teardown (cli.entry): what it printed and the files it
    wrote must be whole, and its exit code the command's."""
    script = str(Path(sys.executable).parent / "persona-pipeline")
    out = tmp_path / "members.csv"
    exported = subprocess.run(
        [script, "export", "Customers", "--what", "memberships", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert exported.returncode == 0, exported.stderr[-2000:]
    members = read_memberships(ready, store.get(ready, "Customers").id)
    assert len(out.read_text().splitlines()) == len(members) + 1  # a header, then every member
    shown = subprocess.run(
        [script, "persona-set", "show", "Customers"], capture_output=True, text=True, timeout=300
    )
    assert main(["persona-set", "show", "Customers"]) == 0
    assert shown.returncode == 0 and shown.stdout == capsys.readouterr().out
    missing = subprocess.run(
        [script, "persona-set", "show", "missing"], capture_output=True, text=True, timeout=300
    )
    assert missing.returncode == 2 and missing.stderr.startswith("error: no persona set named 'missing'")


HEAVY_LIBRARIES = """
import sys
from persona_pipeline.cli import main

assert main(sys.argv[1:]) == 0
print("loaded:", sorted(m for m in ("pandas", "dagster", "sklearn", "pandera") if m in sys.modules))
"""


@pytest.mark.parametrize("warehouse", ["sqlite"], indirect=True)  # nothing here depends on the engine
@pytest.mark.parametrize("command", [["persona-set", "list"], ["persona-set", "show", "Customers"]])
def test_list_and_show_answer_without_the_heavy_libraries(ready: Engine, command: list[str]) -> None:
    """They read the catalog with SQLAlchemy alone: pandas, Dagster and scikit-learn cost seconds to import
    (BENCHMARKS.md, command-line start-up); pandas crept in once through the SQL models' order rule."""
    done = subprocess.run(
        [sys.executable, "-c", HEAVY_LIBRARIES, *command], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[-1] == "loaded: []"


IN_THE_BACKGROUND = """
import signal
from persona_pipeline.cli import main

signal.signal(signal.SIGINT, signal.SIG_IGN)  # as `command &` in a script starts it
assert main(["models", "run"]) == 0
print("SIGTERM default:", signal.getsignal(signal.SIGTERM) is signal.SIG_DFL)
"""


@pytest.mark.parametrize("warehouse", ["sqlite"], indirect=True)  # nothing here depends on the engine
def test_a_command_started_in_the_background_can_still_be_stopped_after_its_runs(seeded: Engine) -> None:
    """Dagster hands SIGINT's handler (ignored here) to SIGTERM after a run; `kill` must still stop the command."""
    done = subprocess.run(
        [sys.executable, "-c", IN_THE_BACKGROUND], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[-1] == "SIGTERM default: True", done.stdout[-500:]


@pytest.mark.parametrize(
    "warehouse", ["sqlite"], indirect=True
)  # the Dagster instance's storage, not the warehouse
def test_the_embedded_dagster_storage_is_dagsters_own_files_kept_open(ready: Engine) -> None:
    """The default dagster.yaml keeps the event log's connections open between events (runtime.sqlite_storage):
    what it wrote must be what Dagster's own SQLite storage reads (the UI of an older home, another tool), an
    earlier version's default is brought up to date but a user's own file never, and a finished command
    leaves no write-ahead log beside its run's database."""
    from dagster._core.storage.sqlite_storage import DagsterSqliteStorage

    from persona_pipeline.runtime import instance as runtime_instance

    home = Path(os.environ["DAGSTER_HOME"])
    assert "OpenSqliteStorage" in (home / "dagster.yaml").read_text()
    ours = DagsterInstance.get()
    run = ours.get_runs(limit=1)[0]
    dagsters = DagsterSqliteStorage.from_local(str(home))
    theirs = dagsters.event_log_storage.get_logs_for_run(run.run_id)
    assert len(theirs) > 20 and [e.message for e in theirs] == [e.message for e in ours.all_logs(run.run_id)]
    assert dagsters.run_storage.get_runs(limit=1)[0].status == DagsterRunStatus.SUCCESS

    (home / "dagster.yaml").write_text(runtime_instance.EARLIER_DEFAULT_DAGSTER_YAMLS[0])
    runtime_instance.instance()
    assert (home / "dagster.yaml").read_text() == runtime_instance.DEFAULT_DAGSTER_YAML
    edited = runtime_instance.EARLIER_DEFAULT_DAGSTER_YAMLS[0] + "# mine\n"
    (home / "dagster.yaml").write_text(edited)
    runtime_instance.instance()
    assert (home / "dagster.yaml").read_text() == edited
    (home / "dagster.yaml").write_text(runtime_instance.DEFAULT_DAGSTER_YAML)

    script = str(Path(sys.executable).parent / "persona-pipeline")
    done = subprocess.run([script, "models", "run"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    latest = DagsterSqliteStorage.from_local(str(home)).run_storage.get_runs(limit=1)[0]
    assert latest.run_id != run.run_id and latest.status == DagsterRunStatus.SUCCESS
    shard = home / "history" / "runs" / f"{latest.run_id}.db"
    assert shard.exists() and not Path(f"{shard}-wal").exists()


def test_a_run_followed_in_the_ui_sees_each_event_as_it_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The UI follows a running run by watching its database file (Dagster's SQLite watchdog): with the event
    log's connection kept open, each event must still reach that file while the run goes on."""
    import time

    from dagster._core.storage.sqlite_storage import DagsterSqliteStorage
    from dagster._core.test_utils import create_run_for_test

    from persona_pipeline.runtime import instance as runtime_instance

    monkeypatch.setenv("PERSONA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    writer = runtime_instance.instance()
    run = create_run_for_test(writer, job_name="followed")
    ui = DagsterSqliteStorage.from_local(str(tmp_path / "dagster")).event_log_storage
    seen: list[str] = []

    def follow(event: EventLogEntry, _cursor: str) -> None:
        seen.append(event.message)

    ui.watch(run.run_id, None, follow)
    try:
        for step in range(3):
            writer.report_engine_event(f"step {step}", run)
            deadline = time.monotonic() + 20
            while f"step {step}" not in seen and time.monotonic() < deadline:
                time.sleep(0.05)
            assert f"step {step}" in seen, f"the watcher saw {seen} after step {step}"
    finally:
        ui.end_watch(run.run_id, follow)
        ui.dispose()
