"""What serves, whatever happened: the current build (never a newer one that did not land), the last good build
while a set is rebuilding or errored, whole files or the old ones, and sets never left "building"."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from persona_pipeline.cli import main
from persona_pipeline.core.domain import BuildSummary, PersonaSetStatus
from persona_pipeline.core.traits import TraitKind
from persona_pipeline.persona_sets import catalog, lifecycle
from persona_pipeline.runtime.jobs import run_pipeline
from persona_pipeline.scoring import pipelines
from persona_pipeline.scoring.realtime import load_scorer, score_stored_contact
from persona_pipeline.warehouse import persona_sets as store
from persona_pipeline.warehouse.bulk import read_frame
from persona_pipeline.warehouse.memberships import read_memberships
from persona_pipeline.warehouse.trait_catalog import load_catalog
from persona_pipeline_tests.helpers import sensor_tick


def _record_a_build_that_never_landed(engine: Engine) -> int:
    """What a build killed after its personas step leaves: a newer build recorded, never made current.

    Its model gives every centroid another persona's id, so anything scored with it disagrees with the
    memberships.
    """
    record = store.get(engine, "Customers")
    current = store.current_build(engine, record)
    model = json.loads(current.model)
    model["persona_ids"] = model["persona_ids"][1:] + model["persona_ids"][:1]
    stale = BuildSummary(**{**current.__dict__, "build": current.build + 1, "model": json.dumps(model)})
    store.record_build(engine, record.id, stale, store.read_personas(engine, record.id))
    assert store.latest_build_number(engine, record.id) == current.build + 1
    return current.build


def test_scoring_and_show_read_the_current_build_never_a_newer_one_that_did_not_land(
    ready: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    current = _record_a_build_that_never_landed(ready)
    pipelines.create(ready, "all", ["customers"], ["Customers"], destination_table="all_scores")
    assert run_pipeline("all", lambda _: None).success
    scored = read_frame(ready, "SELECT contact_id, persona_id FROM all_scores").set_index("contact_id")
    members = read_memberships(ready, store.get(ready, "Customers").id).set_index("contact_id")
    assert len(scored) == len(members)
    assert (scored.loc[members.index, "persona_id"] == members["persona_id"]).all()

    scorer = load_scorer("Customers", ready)
    contacts = read_frame(
        ready, "SELECT * FROM contacts WHERE contact_id IN (SELECT contact_id FROM customers)"
    )
    kinds = {t.name: t.kind for t in load_catalog(ready).traits}
    for row in contacts.head(25).to_dict("records"):
        present = {k: v for k, v in row.items() if k in kinds and v == v and v is not None}
        # SQLite hands booleans back as 0/1 numbers: the contact is given as a user would
        contact = {k: bool(v) if kinds[k] is TraitKind.BOOLEAN else v for k, v in present.items()}
        assert scorer.score(contact).persona_id == members.loc[row["contact_id"], "persona_id"]
    # files with integer ids: a stored contact is found by that integer
    first = int(contacts["contact_id"].iloc[0])
    assert (
        score_stored_contact("Customers", str(first), ready)["persona_id"] == members.loc[first, "persona_id"]
    )

    assert main(["persona-set", "show", "Customers"]) == 0
    assert f"build {current} (k-means):" in capsys.readouterr().out


def test_the_last_good_build_serves_while_the_set_is_errored_or_rebuilding(
    ready: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = store.get(ready, "Customers")
    for state in (lifecycle.queue, lifecycle.start_building):
        state(ready, record)
        assert main(["score", "--persona-set", "Customers", "--json", '{"age": 40}']) == 0
    lifecycle.mark_errored(ready, record.id, "a rebuild failed")
    assert main(["score", "--persona-set", "Customers", "--json", '{"age": 40}']) == 0
    assert "warning" not in capsys.readouterr().err
    assert (
        main(["score", "--persona-set", "Customers", "--json", "{}"]) == 0
    )  # scored, and said to be a guess
    shown = capsys.readouterr()
    assert "gives none of the traits this set scores on" in shown.err and "scored_without" in shown.out
    assert main(["export", "Customers", "--what", "memberships", "--out", str(tmp_path / "m.csv")]) == 0
    assert main(["report", "Customers", "--out", str(tmp_path / "r.html")]) == 0
    assert main(["analyse", "Customers"]) == 0
    assert (tmp_path / "m.csv").read_text().count("\n") == len(read_memberships(ready, record.id)) + 1
    assert store.get(ready, "Customers").status is PersonaSetStatus.ERRORED  # serving changed no status
    capsys.readouterr()
    catalog.create(ready, "Later", "leads")
    assert main(["score", "--persona-set", "Later", "--json", '{"age": 40}']) == 2
    assert "no build to serve yet" in capsys.readouterr().err


def test_a_set_left_building_by_a_run_that_ended_is_settled_by_the_next_tick(ready: Engine) -> None:
    record = store.get(ready, "Customers")
    lifecycle.start_building(
        ready, record
    )  # as a run that failed where it could not write the status leaves it
    sensor_tick("queued_persona_sets")
    settled = store.get(ready, "Customers")
    assert settled.status is PersonaSetStatus.ERRORED and "ended without finishing" in (settled.error or "")
    assert f"build {record.current_build} still serves" in settled.error
    assert settled.current_build == record.current_build


def test_a_failed_export_leaves_the_previous_file_whole(ready: Engine, tmp_path: Path) -> None:
    """The process may write 64 KiB per file (RLIMIT_FSIZE): the export fails like on a full disk."""
    out = tmp_path / "exports" / "memberships.csv"
    out.parent.mkdir()
    out.write_text("the previous export\n")
    script = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"  # a write past the limit then fails with EFBIG
        "resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))\n"
        "from persona_pipeline.cli import main\n"
        f"sys.exit(main(['export', 'Customers', '--what', 'memberships', '--out', {str(out)!r}]))\n"
    )
    if ready.dialect.name == "sqlite":  # its write-ahead log may grow past the limit: checkpoint it first
        with ready.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=os.environ.copy()
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.startswith("error: cannot write") and len(done.stderr.strip().splitlines()) == 1
    assert out.read_text() == "the previous export\n"
    assert [p.name for p in out.parent.iterdir()] == ["memberships.csv"]  # no partial file left


def test_score_reads_a_large_contact_from_a_file_or_standard_input(
    ready: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    document = tmp_path / "contact.json"
    document.write_text('{"age": 40, "dog_owner": true' + " " * 10_000_000 + "}")  # beyond a command line
    assert main(["score", "--persona-set", "Customers", "--json", f"@{document}"]) == 0
    from_file = json.loads(capsys.readouterr().out)
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"age": 40, "dog_owner": true}'))
    assert main(["score", "--persona-set", "Customers", "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out) == from_file


def test_ids_of_deleted_sets_and_pipelines_are_never_reused(ready: Engine) -> None:
    first = catalog.create(ready, "Temporary", "leads")
    assert main(["persona-set", "delete", "Temporary"]) == 0
    assert catalog.create(ready, "Next", "leads").id > first.id
    made = pipelines.create(ready, "once", ["customers"], ["Customers"], destination_table="once_scores")
    pipelines.delete(ready, "once")
    again = pipelines.create(ready, "twice", ["customers"], ["Customers"], destination_table="twice_scores")
    assert again.id > made.id
    with ready.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM persona_sets")).scalar_one() == 2


def test_a_build_whose_partition_was_deleted_as_it_started_says_so(ready: Engine) -> None:
    from persona_pipeline.defs.persona_sets.jobs import BUILD_JOB
    from persona_pipeline.errors import PersonaSetError
    from persona_pipeline.runtime.jobs import run_job

    with pytest.raises(PersonaSetError, match="went away as the build_persona_set run started"):
        run_job(BUILD_JOB, lambda _: None, partition_key="set-999")


def test_of_two_builds_started_together_one_claims_the_set_and_the_other_changes_nothing(
    ready: Engine,
) -> None:
    from dagster import AssetKey

    from persona_pipeline.definitions import make_definitions
    from persona_pipeline.defs.persona_sets.jobs import BUILD_JOB, PERSONA_SET_ASSET_NAMES
    from persona_pipeline.defs.persona_sets.partitions import partition_key
    from persona_pipeline.errors import BuildAlreadyRunning
    from persona_pipeline.runtime.instance import instance
    from persona_pipeline.runtime.jobs import failure_text, run_job

    record = store.get(ready, "Customers")
    first = instance().create_run_for_job(  # the first build's run, launched by another process
        make_definitions().resolve_job_def(BUILD_JOB), tags={"dagster/partition": partition_key(record.id)}
    )
    lifecycle.start_building(ready, record)  # it claims the set
    with pytest.raises(BuildAlreadyRunning):
        lifecycle.start_building(ready, record)
    chain = [AssetKey(a) for a in PERSONA_SET_ASSET_NAMES]
    second = run_job(BUILD_JOB, lambda _: None, chain, partition_key=partition_key(record.id))
    assert not second.success and "is being built by another run now" in failure_text(second)
    after = store.get(ready, "Customers")
    assert after.status == "building" and after.error is None and after.current_build == record.current_build
    assert store.latest_build_number(ready, record.id) == record.current_build  # it recorded nothing
    assert instance().get_run_by_id(first.run_id) is not None


def test_an_export_onto_a_full_disk_leaves_the_previous_file_whole(
    ready: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real full disk: a 64 KiB tmpfs (root mounts it here), smaller than the memberships' CSV."""
    disk = tmp_path / "small_disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], check=True)
    try:
        out = disk / "memberships.csv"
        out.write_text("the previous export\n")
        assert main(["export", "Customers", "--what", "memberships", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert (
            "the disk is full" in err and "nothing was replaced" in err and len(err.strip().splitlines()) == 1
        )
        assert out.read_text() == "the previous export\n"
        assert [p.name for p in disk.iterdir()] == ["memberships.csv"]  # the partial file was removed
    finally:
        subprocess.run(["umount", str(disk)], check=True)
