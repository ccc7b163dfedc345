"""Analysis, Flow, report and export of a built persona set, on SQLite and on PostgreSQL."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import json
import re
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from dagster import AssetKey, DagsterInstance
from sqlalchemy.engine import Engine

from persona_pipeline.cli import main
from persona_pipeline.core.analysis import NO_ORDERS, PurchaseWindow, purchase_table
from persona_pipeline.core.domain import PersonaSet
from persona_pipeline.core.flow import day_end
from persona_pipeline.core.model import PersonaModel
from persona_pipeline.core.orders import counted_order_sql
from persona_pipeline.errors import AnalysisError, FlowError
from persona_pipeline.persona_sets import catalog
from persona_pipeline.runtime.jobs import build_persona_set, refresh_study, take_snapshots
from persona_pipeline.studies import report
from persona_pipeline.studies.analysis import read_analysis, run_analysis
from persona_pipeline.studies.export import export_csv
from persona_pipeline.studies.flow import flow_counts, flow_transitions, history_days, snapshot_day
from persona_pipeline.warehouse import persona_sets as store
from persona_pipeline.warehouse.bulk import read_frame
from persona_pipeline.warehouse.memberships import CURRENT_MEMBERSHIPS
from persona_pipeline_tests.helpers import END_DATE, table_rows


def _quiet(_: str) -> None:
    pass


@pytest.fixture
def built(seeded: Engine) -> PersonaSet:
    catalog.create(seeded, "Customers", "customers", analysis_traits=["state"])
    report = build_persona_set("Customers", _quiet)
    assert report.success, report.message
    return store.get(seeded, "Customers")


def test_analysis_is_stored_with_analysis_traits_and_order_quality(built: PersonaSet, seeded: Engine) -> None:
    table = read_analysis(seeded, built.id)  # the build ran the analysis
    assert set(table[table["role"] == "analysis"]["trait"]) == {"state"}
    sizes = table[(table["section"] == "size") & (table["persona_id"] != 0)]
    assert sizes["count"].sum() == table_rows(seeded, "customers")
    # where values are missing, the share known, cohort and personas, matches the members' traits
    known = table[(table["section"] == "summary") & (table["bucket"] == "known")]
    members = read_frame(
        seeded,
        "SELECT m.persona_id, c.age FROM persona_memberships m JOIN contacts c ON c.contact_id = m.contact_id "
        f"WHERE m.persona_set_id = {built.id} AND {CURRENT_MEMBERSHIPS}",
    )
    of_age = known[known["trait"] == "age"].set_index("persona_id")["value"]
    expected = members.groupby("persona_id")["age"].apply(lambda ages: ages.notna().mean())
    assert 0 < of_age[0] < 1 and abs(of_age[0] - members["age"].notna().mean()) < 1e-9
    assert (of_age.drop(index=0).sort_index() - expected.sort_index()).abs().max() < 1e-9

    with seeded.begin() as conn:  # orders the revenue figures must not mix in
        conn.execute(
            sa.text(
                "INSERT INTO orders (order_id, contact_id, ordered_at, amount, product_category) VALUES "
                "(900001, 1, :t, -5, 'books'), (900002, 2, :t, NULL, 'books'), (900003, 99999999, :t, 10, 'books'), "
                "(900004, 3, :old, 20, 'books')"
            ),
            {"t": dt.datetime(2026, 10, 30), "old": dt.datetime(2001, 1, 1)},
        )
    store.set_analysis_traits(seeded, built.id, ["preferred_channel", "gaming"])
    assert refresh_study("Customers", _quiet, ["persona_analysis"]).success
    table = read_analysis(seeded, built.id)
    quality = {r.bucket: int(r.count) for r in table[table["section"] == "quality"].itertuples()}
    assert (
        quality["negative_amount"] == 1 and quality["missing_amount"] == 1 and quality["unknown_contact"] == 1
    )
    # every order is accounted for: counted in one bucket of the window, or before it
    assert sum(quality.values()) == table_rows(seeded, "orders") and quality["before_window"] >= 1
    assert set(table[table["role"] == "analysis"]["trait"]) == {"preferred_channel"}  # gaming is clustered on
    assert store.get(seeded, "Customers").current_build == 1  # analysis traits never rebuild the personas
    revenue = table[(table["section"] == "revenue") & (table["bucket"] == "revenue")].set_index("persona_id")[
        "value"
    ]
    assert abs(revenue.drop(index=0).sum() - revenue[0]) < 1e-6


def test_the_order_window_is_whole_calendar_days_and_stays_with_the_set(
    built: PersonaSet, seeded: Engine
) -> None:
    """`--window-days 2` counts the day of the latest order and the day before, whatever the hour, and a later
    refresh that does not name a window (new analysis traits) keeps it instead of going back to a year."""
    with seeded.connect() as conn:
        latest = conn.execute(sa.text("SELECT MAX(ordered_at) FROM orders")).scalar()
    latest = dt.datetime.fromisoformat(latest) if isinstance(latest, str) else latest
    last_day = latest.date()
    with (
        seeded.begin() as conn
    ):  # an order at the first instant of the day before the window, one just inside
        conn.execute(
            sa.text(
                "INSERT INTO orders (order_id, contact_id, ordered_at, amount, product_category) VALUES "
                "(910001, 1, :outside, 1000, 'books'), (910002, 1, :inside, 1000, 'books')"
            ),
            {
                "outside": dt.datetime.combine(last_day - dt.timedelta(days=2), dt.time(23, 59, 59)),
                "inside": dt.datetime.combine(last_day - dt.timedelta(days=1), dt.time(0, 0, 0)),
            },
        )
        expected = conn.execute(
            sa.text(
                "SELECT COUNT(*) FROM orders o JOIN persona_memberships m ON m.contact_id = o.contact_id "  # noqa: S608
                f"AND m.persona_set_id = :s AND {CURRENT_MEMBERSHIPS} WHERE o.ordered_at >= :start "
                f"AND {counted_order_sql('o')}"
            ),
            {"s": built.id, "start": dt.datetime.combine(last_day - dt.timedelta(days=1), dt.time())},
        ).scalar()
    assert refresh_study("Customers", _quiet, ["persona_analysis"], window_days=2).success
    table = read_analysis(seeded, built.id)
    window = PurchaseWindow.from_table(table)
    assert window is not None and window.days == 2 and window.last_day == last_day
    assert window.first_day == last_day - dt.timedelta(days=1)
    orders = purchase_table(table).loc[0, "orders"]
    assert orders == expected

    store.set_analysis_traits(seeded, built.id, ["preferred_channel"])
    assert refresh_study("Customers", _quiet, ["persona_analysis"]).success
    assert store.get(seeded, "Customers").window_days == 2
    assert PurchaseWindow.from_table(read_analysis(seeded, built.id)).days == 2


def test_analysis_refuses_sets_that_are_not_ready_and_unknown_traits(seeded: Engine) -> None:
    catalog.create(seeded, "Later", "customers")
    with pytest.raises(AnalysisError, match="not ready.*persona-set build"):
        run_analysis(seeded, "Later")
    with pytest.raises(AnalysisError, match="unknown trait.*'shoe_size'"):
        catalog.require_analysis_traits(seeded, ["shoe_size"])


def _naive_counts(engine: Engine, record: PersonaSet, day: dt.date) -> pd.Series:
    """What a notebook would do: read the day's trait versions, assign everyone, count."""
    model = PersonaModel.from_json(store.current_build(engine, record).model)
    versions = read_frame(
        engine,
        "SELECT * FROM trait_history WHERE valid_from < :end AND (valid_to IS NULL OR valid_to >= :end) "
        "AND contact_id IN (SELECT contact_id FROM customers)",
        {"end": day_end(day).to_pydatetime()},
    )
    persona, _ = model.assign(versions)
    return pd.Series(persona).value_counts().sort_index()


def test_snapshots_match_a_day_by_day_recomputation_and_stay_compact(
    built: PersonaSet, seeded: Engine
) -> None:
    days = [END_DATE - dt.timedelta(days=d) for d in (6, 3, 0)]
    assert take_snapshots(days[0], days[-1], _quiet)[0]  # a week in one run, as a backfill
    assert take_snapshots(days[-1], days[-1], _quiet)[0]  # a second run of a day changes nothing
    counts = flow_counts(seeded, "Customers")
    for day in days:
        got = counts[counts["day"] == day].set_index("persona_id")["members"].sort_index()
        expected = _naive_counts(seeded, built, day)
        assert got[got > 0].to_dict() == expected.to_dict(), day
    stored = table_rows(seeded, "membership_history")
    assert stored < 1.2 * counts[counts["day"] == days[-1]]["members"].sum()  # not days x members
    moves = flow_transitions(seeded, "Customers", days[0], days[-1])
    assert moves["contacts"].sum() >= counts[counts["day"] == days[-1]]["members"].sum()
    assert (moves["from_persona"] == -1).any()  # contacts who joined between the two days

    assert refresh_study("Customers", _quiet, ["persona_flow"]).success
    event = DagsterInstance.get().get_latest_materialization_event(AssetKey("persona_flow"))
    metadata = event.asset_materialization.metadata
    every_day = (days[-1] - days[0]).days + 1  # the run snapshotted every day of the range
    assert metadata["days"].value == every_day and metadata["dagster/row_count"].value == len(counts)
    # stable keys: the window is a value, not part of a key that changes every run
    assert metadata["first and last day"].value == f"{days[0]} to {days[-1]}" and "transitions" in metadata


def test_flow_errors_are_clear(
    built: PersonaSet, seeded: Engine, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with pytest.raises(FlowError, match="no snapshots yet"):
        flow_counts(seeded, "Customers")
    with pytest.raises(FlowError, match="no snapshots yet"):  # not a file of headers alone
        export_csv(seeded, "Customers", "history", tmp_path / "history.csv")
    assert not (tmp_path / "history.csv").exists()
    with pytest.raises(FlowError, match="outside the trait history"):
        snapshot_day(seeded, dt.date(1990, 1, 1))
    with pytest.raises(FlowError, match="outside the trait history"):
        snapshot_day(seeded, dt.date.today() + dt.timedelta(days=3))
    days = [END_DATE - dt.timedelta(days=n) for n in (9, 2, 1, 0)]
    for day in days:
        snapshot_day(seeded, day)
    # the snapshotted days as they are, never one false range
    shown = f"{days[0]}, {days[1]} .. {days[3]}"
    with pytest.raises(FlowError, match=f"has no snapshot .*snapshotted days: {shown}\\); pick one"):
        flow_transitions(seeded, "Customers", END_DATE - dt.timedelta(days=5), END_DATE)
    capsys.readouterr()
    # --from and --to bound the daily table too, and a bad day is refused before any table is printed
    assert main(["flow", "show", "Customers", "--from", str(days[1]), "--to", str(days[2])]) == 0
    table = capsys.readouterr().out.split("members per persona")[1].split("from ")[0]
    assert (
        str(days[1]) in table
        and str(days[2]) in table
        and str(days[0]) not in table
        and str(days[3]) not in table
    )
    assert main(["flow", "show", "Customers", "--from", str(END_DATE - dt.timedelta(days=5))]) == 2
    assert capsys.readouterr().out == ""


def test_exports_stream_every_row(built: PersonaSet, seeded: Engine, tmp_path: Path) -> None:
    snapshot_day(seeded, END_DATE)
    for what, table in (
        ("memberships", "persona_memberships"),
        ("analysis", "persona_analysis"),
        ("history", "membership_history"),
    ):
        out = tmp_path / f"{what}.csv"
        export_csv(seeded, "Customers", what, out)
        with out.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        assert len(rows) - 1 == table_rows(seeded, table), what
    first = pd.read_csv(tmp_path / "memberships.csv", nrows=5)
    assert list(first.columns) == [
        "contact_id",
        "external_id",
        "persona_id",
        "persona_name",
        "confidence",
        "build",
    ]
    # the analysis and history carry each persona's name beside its id (the cohort as "whole cohort")
    names = {p.persona_id: p.name for p in store.read_personas(seeded, built.id)} | {0: "whole cohort"}
    for what in ("analysis", "history"):
        exported = pd.read_csv(tmp_path / f"{what}.csv", keep_default_na=False)
        assert (exported["persona_id"].map(names) == exported["persona_name"]).all(), what
    # counts whole, fractions to at most 6 places, as a spreadsheet should show them
    with (tmp_path / "analysis.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert all(r["count"] == "" or r["count"].isdigit() for r in rows)
    assert all(len(r["share"].partition(".")[2]) <= 6 for r in rows)
    stored = read_analysis(seeded, built.id)
    sizes = stored[stored["section"] == "size"]["count"].astype(int).tolist()
    assert [int(r["count"]) for r in rows if r["section"] == "size"] == sizes
    export_csv(seeded, "Customers", "flow", tmp_path / "flow.csv")
    assert len(pd.read_csv(tmp_path / "flow.csv")) == len(flow_counts(seeded, "Customers"))
    # the Definition with each persona's interpretation, purchases included once the Analysis has run
    export_csv(seeded, "Customers", "personas", tmp_path / "personas.csv")
    personas = pd.read_csv(tmp_path / "personas.csv")
    stored = store.read_personas(seeded, built.id)
    assert personas["name"].tolist() == [p.name for p in stored]
    assert personas["population"].sum() == table_rows(seeded, "persona_memberships")
    assert personas["summary"].str.contains("of revenue from").all()
    assert (personas["ideas"].str.count(r" \| ") >= 1).all()


@contextlib.contextmanager
def chat_endpoint(reply: Callable[[str], str]) -> Iterator[tuple[str, list[dict]]]:
    """A stand-in for a language model's server: it speaks the OpenAI chat-completions protocol over real
    HTTP on a free port, answers `reply(the user message)` and records every request it gets."""
    requests: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the standard library's name
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
            answer = {
                "choices": [
                    {"message": {"role": "assistant", "content": reply(body["messages"][-1]["content"])}}
                ]
            }
            data = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v1", requests
    finally:
        server.shutdown()
        server.server_close()


def _first_sentence(message: str) -> str:
    summary = next(line for line in message.splitlines() if line.startswith("Summary: "))
    return summary.removeprefix("Summary: ").split(". ")[0] + "."


def _prose_metadata() -> str:
    event = DagsterInstance.get().get_latest_materialization_event(AssetKey("persona_analysis"))
    return event.asset_materialization.metadata["prose"].value


def test_an_optional_language_model_retells_summaries_and_is_held_to_their_figures(
    seeded: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def brief(message: str) -> str:  # markup and a terminal escape, as a careless model might write
        return f"<b>Brief</b> \x1b[2J{_first_sentence(message)}"

    with chat_endpoint(brief) as (url, requests):
        monkeypatch.setenv("PERSONA_LLM_URL", url)
        monkeypatch.setenv("PERSONA_LLM_MODEL", "stand-in")
        monkeypatch.setenv("PERSONA_LLM_API_KEY", "sekret")
        catalog.create(seeded, "Customers", "customers")
        assert build_persona_set("Customers", _quiet).success
        stored = store.read_personas(seeded, store.get(seeded, "Customers").id)
        assert len(requests) == len(stored)
        assert {r["path"] for r in requests} == {"/v1/chat/completions"}
        assert {r["auth"] for r in requests} == {"Bearer sekret"}
        assert {(r["body"]["model"], r["body"]["temperature"]) for r in requests} == {("stand-in", 0)}
        for persona in stored:
            story = persona.interpretation
            assert story.prose == f"<b>Brief</b> {story.summary.split('. ')[0]}."
            assert story.prose_by == "stand-in" and not story.prose_note
        assert _prose_metadata() == f"{len(stored)} of {len(stored)} personas retold by stand-in"

        # shown where the summary is, escaped for each place
        assert main(["persona-set", "show", "Customers"]) == 0
        shown = capsys.readouterr().out
        assert f"in stand-in's words: {stored[0].interpretation.prose}" in shown and "\x1b" not in shown
        page = report.write_report(seeded, "Customers", tmp_path / "report.html").read_text(encoding="utf-8")
        assert "&lt;b&gt;Brief&lt;/b&gt;" in page and "<b>Brief</b>" not in page
        export_csv(seeded, "Customers", "personas", tmp_path / "personas.csv")
        exported = pd.read_csv(tmp_path / "personas.csv")
        assert exported["prose"].tolist() == [p.interpretation.prose for p in stored]

        # the same figures and model: a refresh keeps the prose without asking again
        assert refresh_study("Customers", _quiet, ["persona_analysis"]).success
        assert len(requests) == len(stored)

    # a model that invents a figure: its prose is dropped and the reason kept; the templates' text stands
    with chat_endpoint(lambda message: f"{_first_sentence(message)} Expect 99.9% growth.") as (url, requests):
        monkeypatch.setenv("PERSONA_LLM_URL", url)
        monkeypatch.setenv("PERSONA_LLM_MODEL", "inventive")
        assert refresh_study("Customers", _quiet, ["persona_analysis"]).success
        for persona in store.read_personas(seeded, store.get(seeded, "Customers").id):
            assert persona.interpretation.prose == "" and "99.9" in persona.interpretation.prose_note
            assert (
                persona.interpretation.summary
                == next(p for p in stored if p.persona_id == persona.persona_id).interpretation.summary
            )
        assert _prose_metadata().startswith(
            "0 of 6 personas retold; inventive's prose was dropped: it states 99.9"
        )

    # nobody listening: the Analysis still succeeds, and says why there is no prose
    monkeypatch.setenv("PERSONA_LLM_URL", url)  # that server is shut now
    assert refresh_study("Customers", _quiet, ["persona_analysis"]).success
    assert "could not be reached" in _prose_metadata()
    assert all(
        not p.interpretation.prose for p in store.read_personas(seeded, store.get(seeded, "Customers").id)
    )

    # an address that is not one: the run says which variable and how to fix it, and stores nothing new
    monkeypatch.setenv("PERSONA_LLM_URL", "127.0.0.1:8080/v1")
    before = read_analysis(seeded, store.get(seeded, "Customers").id)
    outcome = refresh_study("Customers", _quiet, ["persona_analysis"])
    assert not outcome.success and "PERSONA_LLM_URL must be an http:// or https:// address" in outcome.message
    pd.testing.assert_frame_equal(read_analysis(seeded, store.get(seeded, "Customers").id), before)


def test_without_orders_the_analysis_says_so_instead_of_a_table_of_zeros(
    built: PersonaSet, seeded: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with seeded.begin() as conn:
        conn.execute(sa.text("DELETE FROM orders"))
    assert main(["analyse", "Customers"]) == 0
    shown = capsys.readouterr().out
    assert NO_ORDERS in shown and "0.00" not in shown and "avg order" not in shown
    assert "Orders used: 0" in shown
    event = DagsterInstance.get().get_latest_materialization_event(AssetKey("persona_analysis"))
    assert event.asset_materialization.metadata["purchases"].value == NO_ORDERS
    page = report.write_report(seeded, "Customers", tmp_path / "report.html").read_text(encoding="utf-8")
    assert "No orders were counted in this window" in page and "share of revenue" not in page
    assert "<th>value known</th>" in page  # the seeded base misses some values: said under their traits
    corners = re.findall(
        r"<h3>([^<]*)</h3><div class='table-wrap'><table class='dist'><tr><th>([^<]*)</th>", page
    )
    assert corners and all(
        corner in ("range", "value") for _, corner in corners
    )  # not 'age (years)', 'years'
    assert all("revenue" not in p.interpretation.summary for p in store.read_personas(seeded, built.id))


def test_a_snapshot_of_more_days_than_the_history_holds_takes_the_days_it_has(
    built: PersonaSet, seeded: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    with seeded.begin() as conn:  # a history that began two days before the last: freshly loaded data
        conn.execute(
            sa.text("DELETE FROM trait_history WHERE valid_from < :d"), {"d": END_DATE - dt.timedelta(days=2)}
        )
    first, _ = history_days(seeded)
    asked = (END_DATE - first).days + 15
    assert main(["flow", "snapshot", "--day", END_DATE.isoformat(), "--days", str(asked)]) == 0
    shown = capsys.readouterr().out
    held = (END_DATE - first).days + 1
    assert (
        f"the trait history begins on {first}: snapshotting the {held} days from {first} to {END_DATE}"
        in shown
    )
    assert f"{held} days snapshotted in one run" in shown
    assert flow_counts(seeded, "Customers")["day"].nunique() == held
