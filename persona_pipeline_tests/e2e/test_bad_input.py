"""Bad input through the command line, as a careless or hostile user types it, on SQLite and PostgreSQL.

Every case must answer with exactly one line on stderr starting "error:", no traceback, exit code 2, and
leave the warehouse (every table's rows) and the files under the home folder exactly as they were.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from persona_pipeline.cli import main
from persona_pipeline.core.synthetic import generate
from persona_pipeline.persona_sets import catalog
from persona_pipeline.runtime.jobs import build_persona_set
from persona_pipeline.scoring import pipelines
from persona_pipeline.warehouse.engine import engine_for, forget_engines
from persona_pipeline.warehouse.sources import replace_sources
from persona_pipeline_tests.helpers import END_DATE, postgres_schema

LONG = "x" * 201

# (id, argv); {tmp} is a scratch folder of the case, {home} the home folder, {file} a plain file in {tmp}
CASES: list[tuple[str, list[str]]] = [
    # persona-set create
    ("create-empty-name", ["persona-set", "create", "--name", "", "--cohort", "customers"]),
    ("create-blank-name", ["persona-set", "create", "--name", "   ", "--cohort", "customers"]),
    ("create-long-name", ["persona-set", "create", "--name", LONG, "--cohort", "customers"]),
    ("create-ansi-name", ["persona-set", "create", "--name", "\x1b[31mRed\x1b[0m", "--cohort", "customers"]),
    ("create-bidi-name", ["persona-set", "create", "--name", "evil\u202egnp.exe", "--cohort", "customers"]),
    ("create-newline-name", ["persona-set", "create", "--name", "two\nlines", "--cohort", "customers"]),
    ("create-tab-name", ["persona-set", "create", "--name", "a\tb", "--cohort", "customers"]),
    ("create-zero-width", ["persona-set", "create", "--name", "Cus\u200btomers", "--cohort", "customers"]),
    ("create-bell", ["persona-set", "create", "--name", "ring\x07", "--cohort", "customers"]),
    ("create-duplicate", ["persona-set", "create", "--name", "Customers", "--cohort", "customers"]),
    ("create-duplicate-case", ["persona-set", "create", "--name", "CUSTOMERS", "--cohort", "customers"]),
    ("create-duplicate-nfd", ["persona-set", "create", "--name", "Cafe\u0301", "--cohort", "customers"]),
    ("create-duplicate-nfc-case", ["persona-set", "create", "--name", "CAFÉ", "--cohort", "customers"]),
    ("create-unknown-cohort", ["persona-set", "create", "--name", "N", "--cohort", "nope"]),
    (
        "create-injection-cohort",
        ["persona-set", "create", "--name", "N", "--cohort", "customers; DROP TABLE contacts"],
    ),
    ("create-quote-cohort", ["persona-set", "create", "--name", "N", "--cohort", 'customers"--']),
    (
        "create-unknown-trait",
        ["persona-set", "create", "--name", "N", "--cohort", "customers", "--traits", "age,shoe_size"],
    ),
    (
        "create-injection-trait",
        [
            "persona-set",
            "create",
            "--name",
            "N",
            "--cohort",
            "customers",
            "--traits",
            'age"; DROP TABLE contacts; --',
        ],
    ),
    (
        "create-personas-1",
        ["persona-set", "create", "--name", "N", "--cohort", "customers", "--personas", "1"],
    ),
    (
        "create-personas-13",
        ["persona-set", "create", "--name", "N", "--cohort", "customers", "--personas", "13"],
    ),
    (
        "create-personas-0",
        ["persona-set", "create", "--name", "N", "--cohort", "customers", "--personas", "0"],
    ),
    (
        "create-personas-negative",
        ["persona-set", "create", "--name", "N", "--cohort", "customers", "--personas", "-3"],
    ),
    (
        "create-personas-text",
        ["persona-set", "create", "--name", "N", "--cohort", "customers", "--personas", "six"],
    ),
    (
        "create-seed-negative",
        ["persona-set", "create", "--name", "N", "--cohort", "customers", "--seed", "-1"],
    ),
    (
        "create-unknown-analysis-trait",
        ["persona-set", "create", "--name", "N", "--cohort", "customers", "--analysis-traits", "shoe_size"],
    ),
    ("create-no-cohort", ["persona-set", "create", "--name", "N"]),
    ("create-no-name", ["persona-set", "create", "--cohort", "customers"]),
    # persona-set update / build / others
    ("update-unknown-set", ["persona-set", "update", "Nobody", "--personas", "3"]),
    ("update-unknown-cohort", ["persona-set", "update", "Customers", "--cohort", "nope"]),
    ("update-unknown-trait", ["persona-set", "update", "Customers", "--traits", "age,shoe_size"]),
    ("update-personas-13", ["persona-set", "update", "Customers", "--personas", "13"]),
    ("update-personas-1", ["persona-set", "update", "Customers", "--personas", "1"]),
    ("update-traits-conflict", ["persona-set", "update", "Customers", "--traits", "age", "--default-traits"]),
    (
        "update-personas-conflict",
        ["persona-set", "update", "Customers", "--personas", "3", "--auto-personas"],
    ),
    ("build-unknown-set", ["persona-set", "build", "Nobody"]),
    ("build-share-negative", ["persona-set", "build", "Customers", "--max-quarantine-share", "-1"]),
    ("build-share-nan", ["persona-set", "build", "Customers", "--max-quarantine-share", "nan"]),
    ("build-share-inf", ["persona-set", "build", "Customers", "--max-quarantine-share", "inf"]),
    ("build-share-two", ["persona-set", "build", "Customers", "--max-quarantine-share", "2"]),
    ("build-share-text", ["persona-set", "build", "Customers", "--max-quarantine-share", "lots"]),
    ("show-unknown", ["persona-set", "show", "Nobody"]),
    ("show-ansi", ["persona-set", "show", "\x1b[2J"]),
    ("delete-unknown", ["persona-set", "delete", "Nobody"]),
    ("delete-in-use", ["persona-set", "delete", "Customers"]),
    ("rebuild-unknown", ["persona-set", "rebuild", "Nobody"]),
    ("explore-unknown", ["persona-set", "explore", "Nobody", "--show"]),
    ("explore-both", ["persona-set", "explore", "Customers", "--show", "--hide"]),
    ("explore-neither", ["persona-set", "explore", "Customers"]),
    ("rename-unknown-set", ["persona-set", "rename-persona", "Nobody", "--persona", "1", "--to", "X"]),
    (
        "rename-unknown-persona",
        ["persona-set", "rename-persona", "Customers", "--persona", "99", "--to", "X"],
    ),
    ("rename-empty", ["persona-set", "rename-persona", "Customers", "--persona", "1", "--to", " "]),
    ("rename-ansi", ["persona-set", "rename-persona", "Customers", "--persona", "1", "--to", "\x1b[31mX"]),
    ("rename-long", ["persona-set", "rename-persona", "Customers", "--persona", "1", "--to", LONG]),
    ("rename-clash", ["persona-set", "rename-persona", "Customers", "--persona", "1", "--to", "{persona2}"]),
    (
        "rename-clash-case",
        ["persona-set", "rename-persona", "Customers", "--persona", "1", "--to", "{persona2_upper}"],
    ),
    ("rename-persona-text", ["persona-set", "rename-persona", "Customers", "--persona", "one", "--to", "X"]),
    ("analysis-traits-unknown", ["persona-set", "analysis-traits", "Customers", "--set", "shoe_size"]),
    ("analysis-traits-unknown-set", ["persona-set", "analysis-traits", "Nobody", "--set", "state"]),
    ("persona-set-no-action", ["persona-set"]),
    ("persona-set-bad-action", ["persona-set", "frobnicate"]),
    # studies
    ("analyse-unknown", ["analyse", "Nobody"]),
    ("analyse-not-built", ["analyse", "Later"]),
    ("analyse-window-zero", ["analyse", "Customers", "--window-days", "0"]),
    ("analyse-window-negative", ["analyse", "Customers", "--window-days", "-5"]),
    ("analyse-window-text", ["analyse", "Customers", "--window-days", "year"]),
    ("snapshot-day-word", ["flow", "snapshot", "--day", "yesterday"]),
    ("snapshot-day-format", ["flow", "snapshot", "--day", "01/11/2026"]),
    ("snapshot-day-impossible", ["flow", "snapshot", "--day", "2026-02-30"]),
    ("snapshot-day-before-history", ["flow", "snapshot", "--day", "1990-01-01"]),
    ("snapshot-day-future", ["flow", "snapshot", "--day", "2999-01-01"]),
    ("snapshot-days-negative", ["flow", "snapshot", "--days", "-3"]),
    ("snapshot-days-zero", ["flow", "snapshot", "--days", "0"]),
    ("snapshot-days-text", ["flow", "snapshot", "--days", "many"]),
    ("flow-show-unknown", ["flow", "show", "Nobody"]),
    ("flow-show-never-snapshotted", ["flow", "show", "Customers"]),
    ("flow-show-bad-from", ["flow", "show", "Customers", "--from", "monday"]),
    ("report-unknown", ["report", "Nobody"]),
    ("report-not-built", ["report", "Later"]),
    ("report-out-directory", ["report", "Customers", "--out", "{tmp}"]),
    ("report-out-under-file", ["report", "Customers", "--out", "{file}/report.html"]),
    ("report-out-device", ["report", "Customers", "--out", "/dev/null"]),
    ("report-out-proc", ["report", "Customers", "--out", "/proc/version"]),
    ("report-out-readonly", ["report", "Customers", "--out", "/proc/persona/report.html"]),
    ("explore-out-directory", ["explore", "--out", "{tmp}"]),
    ("explore-out-under-file", ["explore", "--out", "{file}/explore.html"]),
    ("export-unknown", ["export", "Nobody", "--what", "memberships", "--out", "{tmp}/m.csv"]),
    ("export-not-built", ["export", "Later", "--what", "memberships", "--out", "{tmp}/m.csv"]),
    ("export-bad-what", ["export", "Customers", "--what", "everything", "--out", "{tmp}/m.csv"]),
    ("export-out-directory", ["export", "Customers", "--what", "memberships", "--out", "{tmp}"]),
    ("export-out-under-file", ["export", "Customers", "--what", "analysis", "--out", "{file}/a.csv"]),
    ("export-out-device", ["export", "Customers", "--what", "memberships", "--out", "/dev/full"]),
    ("export-flow-never-snapshotted", ["export", "Customers", "--what", "flow", "--out", "{tmp}/f.csv"]),
    ("export-no-out", ["export", "Customers", "--what", "memberships"]),
    # score
    ("score-unknown-set", ["score", "--persona-set", "Nobody", "--json", '{"age": 30}']),
    ("score-not-built", ["score", "--persona-set", "Later", "--json", '{"age": 30}']),
    ("score-invalid-json", ["score", "--persona-set", "Customers", "--json", "{age: 30"]),
    ("score-json-list", ["score", "--persona-set", "Customers", "--json", "[1, 2]"]),
    ("score-json-number", ["score", "--persona-set", "Customers", "--json", "42"]),
    ("score-json-missing-file", ["score", "--persona-set", "Customers", "--json", "@{tmp}/nothing.json"]),
    ("score-json-directory", ["score", "--persona-set", "Customers", "--json", "@{tmp}"]),
    ("score-wrong-type", ["score", "--persona-set", "Customers", "--json", '{"age": "old"}']),
    ("score-unknown-trait", ["score", "--persona-set", "Customers", "--json", '{"shoe_size": 44}']),
    ("score-bad-boolean", ["score", "--persona-set", "Customers", "--json", '{"dog_owner": "maybe"}']),
    ("score-nan", ["score", "--persona-set", "Customers", "--json", '{"age": NaN}']),
    # pipelines
    (
        "pipeline-unknown-cohort",
        ["pipeline", "create", "p", "--population", "nope", "--payload", "Customers", "--table", "t1"],
    ),
    (
        "pipeline-unknown-payload",
        ["pipeline", "create", "p", "--population", "customers", "--payload", "Nobody", "--table", "t1"],
    ),
    ("pipeline-no-population", ["pipeline", "create", "p", "--payload", "Customers", "--table", "t1"]),
    (
        "pipeline-empty-population",
        ["pipeline", "create", "p", "--population", ",", "--payload", "Customers", "--table", "t1"],
    ),
    (
        "pipeline-bad-trigger",
        [
            "pipeline",
            "create",
            "p",
            "--population",
            "customers",
            "--payload",
            "Customers",
            "--trigger",
            "hourly",
            "--table",
            "t1",
        ],
    ),
    (
        "pipeline-schedule-no-cron",
        [
            "pipeline",
            "create",
            "p",
            "--population",
            "customers",
            "--payload",
            "Customers",
            "--trigger",
            "schedule",
            "--table",
            "t1",
        ],
    ),
    (
        "pipeline-bad-cron",
        [
            "pipeline",
            "create",
            "p",
            "--population",
            "customers",
            "--payload",
            "Customers",
            "--trigger",
            "schedule",
            "--cron",
            "every night",
            "--table",
            "t1",
        ],
    ),
    (
        "pipeline-cron-six-fields",
        [
            "pipeline",
            "create",
            "p",
            "--population",
            "customers",
            "--payload",
            "Customers",
            "--trigger",
            "schedule",
            "--cron",
            "0 0 2 * * *",
            "--table",
            "t1",
        ],
    ),
    (
        "pipeline-cron-ad-hoc",
        [
            "pipeline",
            "create",
            "p",
            "--population",
            "customers",
            "--payload",
            "Customers",
            "--cron",
            "0 2 * * *",
            "--table",
            "t1",
        ],
    ),
    (
        "pipeline-no-destination",
        ["pipeline", "create", "p", "--population", "customers", "--payload", "Customers"],
    ),
    (
        "pipeline-table-upper",
        [
            "pipeline",
            "create",
            "p",
            "--population",
            "customers",
            "--payload",
            "Customers",
            "--table",
            "Scores",
        ],
    ),
    (
        "pipeline-table-injection",
        [
            "pipeline",
            "create",
            "p",
            "--population",
            "customers",
            "--payload",
            "Customers",
            "--table",
            "t; DROP TABLE contacts",
        ],
    ),
    (
        "pipeline-table-reserved",
        [
            "pipeline",
            "create",
            "p",
            "--population",
            "customers",
            "--payload",
            "Customers",
            "--table",
            "contacts",
        ],
    ),
    (
        "pipeline-table-catalog",
        [
            "pipeline",
            "create",
            "p",
            "--population",
            "customers",
            "--payload",
            "Customers",
            "--table",
            "persona_sets",
        ],
    ),
    (
        "pipeline-table-cohort",
        [
            "pipeline",
            "create",
            "p",
            "--population",
            "customers",
            "--payload",
            "Customers",
            "--table",
            "customers",
        ],
    ),
    (
        "pipeline-table-taken",
        [
            "pipeline",
            "create",
            "p",
            "--population",
            "customers",
            "--payload",
            "Customers",
            "--table",
            "nightly_personas",
        ],
    ),
    (
        "pipeline-csv-outside",
        [
            "pipeline",
            "create",
            "p",
            "--population",
            "customers",
            "--payload",
            "Customers",
            "--csv",
            "../../escape.csv",
        ],
    ),
    (
        "pipeline-csv-absolute",
        [
            "pipeline",
            "create",
            "p",
            "--population",
            "customers",
            "--payload",
            "Customers",
            "--csv",
            "/etc/passwd",
        ],
    ),
    (
        "pipeline-duplicate",
        [
            "pipeline",
            "create",
            "nightly",
            "--population",
            "customers",
            "--payload",
            "Customers",
            "--table",
            "t2",
        ],
    ),
    (
        "pipeline-duplicate-case",
        [
            "pipeline",
            "create",
            "NIGHTLY",
            "--population",
            "customers",
            "--payload",
            "Customers",
            "--table",
            "t2",
        ],
    ),
    (
        "pipeline-ansi-name",
        [
            "pipeline",
            "create",
            "\x1b]0;pwned\x07",
            "--population",
            "customers",
            "--payload",
            "Customers",
            "--table",
            "t2",
        ],
    ),
    (
        "pipeline-empty-name",
        ["pipeline", "create", " ", "--population", "customers", "--payload", "Customers", "--table", "t2"],
    ),
    ("pipeline-run-unknown", ["pipeline", "run", "nobody"]),
    ("pipeline-delete-unknown", ["pipeline", "delete", "nobody"]),
    ("pipeline-no-action", ["pipeline"]),
    # models
    ("models-run-unknown", ["models", "run", "--only", "nope"]),
    ("models-delete-unknown", ["models", "delete", "--only", "nope"]),
    ("models-delete-in-use", ["models", "delete", "--only", "customers"]),
    ("models-delete-staging", ["models", "delete", "--only", "stg_contacts"]),
    ("models-bad-action", ["models", "drop"]),
    # seed and load
    ("seed-contacts-negative", ["seed", "--contacts", "-5"]),
    ("seed-contacts-zero", ["seed", "--contacts", "0"]),
    ("seed-contacts-text", ["seed", "--contacts", "lots"]),
    ("seed-days-negative", ["seed", "--days", "-1"]),
    ("seed-end-date", ["seed", "--end-date", "tomorrow"]),
    ("seed-seed-negative", ["seed", "--seed", "-2"]),
    ("load-missing-file", ["load", "{tmp}/nothing.csv", "--traits", "{tmp}/traits.yaml"]),
    ("load-missing-traits", ["load", "{tmp}/contacts.csv", "--traits", "{tmp}/nothing.yaml"]),
    ("load-traits-min-word", ["load", "{tmp}/contacts.csv", "--traits", "{tmp}/min_word.yaml"]),
    ("load-traits-labels-list", ["load", "{tmp}/contacts.csv", "--traits", "{tmp}/labels_list.yaml"]),
    ("load-traits-levels-string", ["load", "{tmp}/contacts.csv", "--traits", "{tmp}/levels_string.yaml"]),
    ("load-traits-latin1", ["load", "{tmp}/contacts.csv", "--traits", "{tmp}/latin1.yaml"]),
    ("load-traits-bad-yaml", ["load", "{tmp}/contacts.csv", "--traits", "{tmp}/bad.yaml"]),
    ("load-traits-bad-kind", ["load", "{tmp}/contacts.csv", "--traits", "{tmp}/bad_kind.yaml"]),
    ("load-traits-min-above-max", ["load", "{tmp}/contacts.csv", "--traits", "{tmp}/min_above_max.yaml"]),
    ("load-traits-directory", ["load", "{tmp}/contacts.csv", "--traits", "{tmp}"]),
    ("load-empty-file", ["load", "{tmp}/empty.csv", "--traits", "{tmp}/traits.yaml"]),
    ("load-missing-column", ["load", "{tmp}/no_age.csv", "--traits", "{tmp}/traits.yaml"]),
    ("load-every-row-bad", ["load", "{tmp}/all_bad.csv", "--traits", "{tmp}/traits.yaml"]),
    ("load-ids-beyond-64-bits", ["load", "{tmp}/huge_ids.csv", "--traits", "{tmp}/traits.yaml"]),
    (
        "load-bad-encoding-name",
        ["load", "{tmp}/contacts.csv", "--traits", "{tmp}/traits.yaml", "--encoding", "klingon"],
    ),
    ("load-not-utf8", ["load", "{tmp}/latin1.csv", "--traits", "{tmp}/traits.yaml"]),
    ("load-bad-parquet", ["load", "{tmp}/bad.parquet", "--traits", "{tmp}/traits.yaml"]),
    (
        "load-orders-missing-columns",
        ["load", "{tmp}/contacts.csv", "--traits", "{tmp}/traits.yaml", "--orders", "{tmp}/contacts.csv"],
    ),
    ("load-directory", ["load", "{tmp}", "--traits", "{tmp}/traits.yaml"]),
    ("load-header-only", ["load", "{tmp}/header_only.csv", "--traits", "{tmp}/traits.yaml"]),
    (
        "load-rejects-unwritable",
        ["load", "{tmp}/half_bad.csv", "--traits", "{tmp}/traits.yaml", "--rejects", "/dev/full"],
    ),
    (
        "load-rejects-under-file",
        ["load", "{tmp}/half_bad.csv", "--traits", "{tmp}/traits.yaml", "--rejects", "{file}/r.csv"],
    ),
    ("seed-contacts-huge", ["seed", "--contacts", "99999999999999999999"]),
    ("demo-too-few-contacts", ["demo", "--contacts", "5"]),
    # the command line itself
    ("no-command", []),
    ("unknown-command", ["frobnicate"]),
    ("unknown-flag", ["persona-set", "list", "--colour"]),
]


def _fill(argv: list[str], values: dict[str, str]) -> list[str]:
    return [
        arg.format(**values) if "{" in arg and "}" in arg and not arg.startswith('{"') else arg
        for arg in argv
    ]


def _write_inputs(folder: Path) -> None:
    """The files the load cases read: a good base file and traits, and the broken ones."""
    (folder / "plain.txt").write_text("not a folder\n")
    (folder / "contacts.csv").write_text("contact_id,age\n1,30\n2,40\n")
    (folder / "traits.yaml").write_text("traits:\n  - {name: age, kind: numeric, min: 18, max: 100}\n")
    (folder / "min_word.yaml").write_text("traits:\n  - {name: age, kind: numeric, min: eighteen}\n")
    (folder / "labels_list.yaml").write_text(
        "traits:\n  - {name: age, kind: numeric, labels: [young, old]}\n"
    )
    (folder / "levels_string.yaml").write_text("traits:\n  - {name: age, kind: categorical, levels: north}\n")
    (folder / "latin1.yaml").write_bytes(
        "traits:\n  - {name: age, kind: numeric, description: 'âge'}\n".encode("latin-1")
    )
    (folder / "bad.yaml").write_text("traits: [ {name: age, kind: numeric\n")
    (folder / "bad_kind.yaml").write_text("traits:\n  - {name: age, kind: number}\n")
    (folder / "min_above_max.yaml").write_text("traits:\n  - {name: age, kind: numeric, min: 90, max: 10}\n")
    (folder / "empty.csv").write_text("")
    (folder / "no_age.csv").write_text("contact_id,years\n1,30\n")
    (folder / "all_bad.csv").write_text("contact_id,age\nx,30\n-1,40\n")
    (folder / "huge_ids.csv").write_text("contact_id,age\n99999999999999999999,30\n9223372036854775808,40\n")
    (folder / "latin1.csv").write_bytes("contact_id,age\n1,30 ans âgé\n".encode("latin-1"))
    (folder / "bad.parquet").write_bytes(b"PAR1 this is not parquet")
    (folder / "header_only.csv").write_text("contact_id,age\n")
    (folder / "zero.sqlite").write_bytes(b"")  # a truncated warehouse: not to be taken for a new, empty one
    (folder / "damaged.sqlite").write_bytes(b"SQLite format 3\x00" + b"\x13" * 4000)
    (folder / "half_bad.csv").write_text("contact_id,age\n1,30\n2,forty\n3,50\n")


def _state(engine: sa.Engine, home: Path) -> dict[str, str]:
    """A fingerprint of everything stored: each table's rows (hashed), and each file's size and hash."""
    state = {}
    inspector = sa.inspect(engine)
    with engine.connect() as conn:
        for table in sorted(inspector.get_table_names()):
            rows = conn.execute(sa.text(f'SELECT * FROM "{table}"')).all()  # noqa: S608 - names from the database
            state[f"table {table}"] = hashlib.sha256(repr(sorted(map(repr, rows))).encode()).hexdigest()
    for path in sorted(home.rglob("*")):
        if path.is_file() and "dagster" not in path.parts and not path.name.startswith("warehouse.sqlite"):
            state[f"file {path.relative_to(home)}"] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def stage(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """One built set (Customers), one never built (Later), a set named Café, a pipeline; built once per backend."""
    root = tmp_path_factory.mktemp(f"bad_input_{request.param}")
    with pytest.MonkeyPatch.context() as patch, contextlib.ExitStack() as cleanup:
        patch.setenv("PERSONA_HOME", str(root / "home"))
        patch.setenv("DAGSTER_HOME", str(root / "dagster"))
        if request.param == "sqlite":
            url = f"sqlite:///{root / 'warehouse.sqlite'}"
        else:
            url = cleanup.enter_context(postgres_schema())
        patch.setenv("PERSONA_WAREHOUSE_URL", url)
        engine = engine_for(url)
        base = generate(contacts=1_500, days=10, seed=5, end_date=END_DATE)
        replace_sources(engine, base.catalog, base.contacts, base.trait_history, base.orders, base.segments)
        catalog.create(engine, "Customers", "customers", n_personas=3)
        assert build_persona_set("Customers", lambda _: None).success
        catalog.create(engine, "Later", "leads")
        catalog.create(engine, "Café", "leads")
        pipelines.create(
            engine, "nightly", ["customers"], ["Customers"], destination_table="nightly_personas"
        )
        _write_inputs(root)
        yield {"engine": engine, "home": root / "home", "tmp": root}
        engine.dispose()
        forget_engines()


def test_every_bad_input_is_one_line_exit_2_and_changes_nothing(
    stage: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    from persona_pipeline.warehouse import persona_sets as store

    engine, home, tmp = stage["engine"], stage["home"], stage["tmp"]
    personas = store.read_personas(engine, store.get(engine, "Customers").id)
    values = {
        "tmp": str(tmp),
        "home": str(home),
        "file": str(tmp / "plain.txt"),
        "persona2": personas[1].name,
        "persona2_upper": personas[1].name.upper(),
    }
    os.environ.pop("PERSONA_SCORE_BUCKETS", None)
    before = _state(engine, home)
    failures = []
    for case, argv in CASES:
        capsys.readouterr()
        try:
            code = main(_fill(argv, values))
        except SystemExit as exc:  # argparse's usage errors
            code = exc.code
        except Exception as exc:  # noqa: BLE001 - every escape is a failure of its case, reported with the rest
            code = f"raised {type(exc).__name__}: {exc}"
        captured = capsys.readouterr()
        lines = [line for line in captured.err.splitlines() if line.strip()]
        if code != 2 or len(lines) != 1 or not lines[0].startswith("error: ") or "Traceback" in captured.err:
            failures.append(f"{case}: exit {code}, stderr {captured.err[-400:]!r}")
        elif "\x1b" in captured.err or "\u202e" in captured.err:
            failures.append(f"{case}: the message echoes a terminal escape: {captured.err!r}")
        after = _state(engine, home)
        if after != before:
            changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
            failures.append(f"{case}: changed {changed}")
            before = after
    assert not failures, "\n".join(failures)
    assert len(CASES) >= 150


ENVIRONMENTS = [
    ("sqlite-zero-length", {"PERSONA_WAREHOUSE_URL": "sqlite:///{tmp}/zero.sqlite"}, ["persona-set", "list"]),
    ("sqlite-damaged", {"PERSONA_WAREHOUSE_URL": "sqlite:///{tmp}/damaged.sqlite"}, ["persona-set", "list"]),
    ("url-not-a-url", {"PERSONA_WAREHOUSE_URL": "notaurl"}, ["persona-set", "list"]),
    (
        "url-unknown-driver",
        {"PERSONA_WAREHOUSE_URL": "mysql://user:secret@db/warehouse"},
        ["persona-set", "list"],
    ),
    (
        "url-server-down",
        {"PERSONA_WAREHOUSE_URL": "postgresql://postgres@127.0.0.1:1/test"},
        ["persona-set", "list"],
    ),
    ("flow-start-garbage", {"PERSONA_FLOW_START": "garbage"}, ["flow", "snapshot"]),
    ("score-buckets-words", {"PERSONA_SCORE_BUCKETS": "many"}, ["pipeline", "run", "nightly"]),
    ("sensor-interval-words", {"PERSONA_SENSOR_INTERVAL": "soon"}, ["pipeline", "run", "nightly"]),
    (
        "export-dir-under-file",
        {"PERSONA_EXPORT_DIR": "{file}/exports"},
        ["pipeline", "create", "p", "--population", "customers", "--payload", "Customers", "--csv", "p.csv"],
    ),
]


@pytest.mark.parametrize("case, environment, argv", ENVIRONMENTS, ids=[e[0] for e in ENVIRONMENTS])
def test_bad_settings_are_one_line_exit_2_and_never_echo_a_password(
    stage: dict,
    case: str,
    environment: dict[str, str],
    argv: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In a fresh process each (the installed command): some settings are read when the Dagster definitions are
    first imported."""
    before = _state(stage["engine"], stage["home"])
    values = {"file": stage["tmp"] / "plain.txt", "tmp": stage["tmp"]}
    env = {**os.environ, **{k: v.format(**values) for k, v in environment.items()}}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "persona-pipeline"), *argv],  # as a user runs it
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    err = done.stderr
    assert done.returncode == 2 and len(err.strip().splitlines()) == 1 and err.startswith("error: "), (
        case,
        err,
    )
    assert "secret" not in err and "Traceback" not in err
    assert _state(stage["engine"], stage["home"]) == before
