"""Explore: shown persona sets side by side, the show/hide toggle, and the sensor that keeps the page current."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from dagster import AssetKey
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from persona_pipeline.cli import main
from persona_pipeline.core.domain import Persona, TraitEffect
from persona_pipeline.core.render.explore import ExploreSet, geography, render, top_regions
from persona_pipeline.core.render.overview import SetOverview
from persona_pipeline.core.render.overview import markdown as overview_markdown
from persona_pipeline.core.render.overview import render as render_overview
from persona_pipeline.persona_sets import lifecycle
from persona_pipeline.runtime.instance import instance
from persona_pipeline.runtime.jobs import build_persona_set
from persona_pipeline.studies.explore import (
    default_explore_path,
    explore_geography,
    explore_sets,
    write_explore,
)
from persona_pipeline.studies.overview import default_overview_path, overview_rows
from persona_pipeline.warehouse import persona_sets as store
from persona_pipeline.warehouse.bulk import read_frame
from persona_pipeline_tests.helpers import sensor_tick

HOSTILE = "<script>alert(1)</script>"

counts_strategy = st.lists(
    st.tuples(st.sampled_from(["A", "B"]), st.integers(1, 4), st.sampled_from(["CA", "NY", "TX", None])),
    min_size=1,
    max_size=40,
    unique=True,
).flatmap(
    lambda keys: st.lists(st.integers(1, 500), min_size=len(keys), max_size=len(keys)).map(
        lambda members: pd.DataFrame(
            [(*k, m) for k, m in zip(keys, members, strict=True)],
            columns=["persona_set", "persona_id", "region", "members"],
        )
    )
)


@settings(max_examples=60, deadline=None)
@given(counts_strategy)
def test_geography_shares_and_lifts_are_consistent(counts: pd.DataFrame) -> None:
    geo = geography(counts)
    assert (top_regions(geo)["lift"] >= 1.1).all()  # what Explore calls over-represented is
    assert geo["members"].sum() == counts["members"].sum()
    per_persona = geo.groupby(["persona_set", "persona_id"])["share"].sum()
    assert per_persona.round(9).eq(1).all()
    # within a set and region, the personas' lifts weighted by their size average to exactly 1
    size = geo.groupby(["persona_set", "persona_id"])["members"].transform("sum")
    total = geo.groupby("persona_set")["members"].transform("sum")
    weighted = (geo["lift"] * size / total).groupby([geo["persona_set"], geo["region"]]).sum()
    assert weighted.round(9).eq(1).all()


def test_top_regions_ignore_small_counts_and_unknown() -> None:
    counts = pd.DataFrame(
        [
            ("S", 1, "CA", 300),
            ("S", 1, "NY", 100),
            ("S", 1, "VT", 5),  # a huge lift on five people: not shown
            ("S", 1, None, 90),
            ("S", 2, "CA", 100),
            ("S", 2, "NY", 300),
        ],
        columns=["persona_set", "persona_id", "region", "members"],
    )
    tops = top_regions(geography(counts))
    # persona 1 has a fifth of its members in NY where the set has 45%: not over-represented there
    assert tops[tops["persona_id"] == 1]["region"].tolist() == ["CA"]
    assert tops[tops["persona_id"] == 2]["region"].tolist() == ["NY"]


def test_page_escapes_user_text() -> None:
    trait = TraitEffect("t", "true", 1.0, 1.0, 0.0, "<img src=x onerror=alert(2)>")
    persona = Persona(1, HOSTILE, 10, 1.0, [trait], [], "<svg></svg>")
    page = render([ExploreSet(1, HOSTILE, "c<b>", 1, None, [persona])], None, None)
    assert "<script>alert" not in page and "<img src=x" not in page and "c<b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "no region trait" in page
    assert "No built persona set" in render([], None, "state")


def test_explore_compares_shown_sets(seeded: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["persona-set", "create", "--name", HOSTILE, "--cohort", "customers"]) == 0
    assert main(["persona-set", "create", "--name", "Leads", "--cohort", "leads", "--personas", "3"]) == 0
    assert (
        main(
            [
                "persona-set",
                "create",
                "--name",
                "Private",
                "--cohort",
                "leads",
                "--personas",
                "2",
                "--no-explore",
            ]
        )
        == 0
    )
    for name in (HOSTILE, "Leads", "Private"):
        assert build_persona_set(name, lambda _: None, study=False).success
    first = sensor_tick("explore_refresh", None)
    (request,) = first.run_requests
    assert sensor_tick("explore_refresh", first.cursor).skip_reason  # nothing changed since: no second run

    capsys.readouterr()
    assert main(["explore"]) == 0
    out = capsys.readouterr().out
    assert "Leads: " in out and "Private" not in out
    page = default_explore_path().read_text("utf-8")
    assert page.count("class='set-column'") == 2 and "Private" not in page
    assert "&lt;script&gt;" in page and HOSTILE not in page
    materialization = instance().get_latest_materialization_event(AssetKey("persona_explore"))
    assert materialization.asset_materialization.metadata["persona_sets"].value == 2
    # the overview lists every set, shown or not, with its status, personas and report link, escaped
    overview_page = default_overview_path().read_text("utf-8")
    assert HOSTILE not in overview_page and overview_page.count("<tr class='status-ready'>") == 3
    listed = instance().get_latest_materialization_event(AssetKey("persona_sets_overview"))
    table = listed.asset_materialization.metadata["persona sets"].value
    assert "Private" in table and "| leads | 2 |" in table and HOSTILE not in table
    # an errored set shows its reason there, and the sensor asks for a refresh
    ticked = sensor_tick("explore_refresh", first.cursor)
    assert not ticked.run_requests  # nothing changed yet
    lifecycle.mark_errored(seeded, store.get(seeded, "Private").id, "the cohort was empty")
    errored = sensor_tick("explore_refresh", first.cursor)
    assert errored.run_requests
    assert any(r.cells()[1] == "errored: the cohort was empty" for r in overview_rows(seeded))

    # geography counts every member once: per persona they add up to its population
    sets = explore_sets(seeded)
    geo = explore_geography(seeded, sets, "state")
    for item in sets:
        mine = geo[geo["persona_set"] == item.name].groupby("persona_id")["members"].sum()
        assert mine.to_dict() == {p.persona_id: p.population for p in item.personas}
    states = read_frame(seeded, "SELECT state FROM contacts c JOIN leads l ON l.contact_id = c.contact_id")
    assert geo[geo["persona_set"] == "Leads"]["members"].sum() == len(states)

    # hiding, showing and renaming each change what Explore shows, so each makes the sensor run it again
    seen = {first.cursor}
    assert main(["persona-set", "explore", HOSTILE, "--hide"]) == 0
    hidden = sensor_tick("explore_refresh", first.cursor)
    assert hidden.run_requests and hidden.cursor not in seen
    seen.add(hidden.cursor)
    path, table = write_explore(seeded)
    assert set(table["persona_set"]) == {"Leads"}
    assert main(["persona-set", "explore", "Private", "--show"]) == 0
    assert main(["persona-set", "rename-persona", "Leads", "--persona", "1", "--to", "Our Leads"]) == 0
    renamed = sensor_tick("explore_refresh", hidden.cursor)
    assert renamed.run_requests and renamed.cursor not in seen
    assert "Our Leads" in write_explore(seeded)[0].read_text("utf-8")
    assert main(["persona-set", "explore", "Private", "--hide"]) == 0  # back to what it showed before
    back = sensor_tick("explore_refresh", renamed.cursor)
    assert back.run_requests and back.run_requests[0].run_key not in {
        r.run_key for r in (first, hidden, renamed) for r in r.run_requests
    }
    assert main(["persona-set", "explore", "Nobody", "--show"]) == 2
    assert not store.get(seeded, "Private").show_in_explore and not store.get(seeded, HOSTILE).show_in_explore
    assert store.get(seeded, "Leads").show_in_explore
    lifecycle.queue(
        seeded, store.get(seeded, "Leads")
    )  # being rebuilt: still compared, with its current build
    assert "Leads" in set(write_explore(seeded)[1]["persona_set"])


def test_overview_escapes_user_text_and_links_reports(tmp_path: Path) -> None:
    report = tmp_path / "reports" / "1-x.html"
    row = SetOverview(HOSTILE, "errored", "<img src=x onerror=alert(2)>", "c|b", 4, 1234, False, None, report)
    page = render_overview([row], tmp_path / "reports")
    assert "<script>alert" not in page and "<img src=x" not in page
    assert 'href="1-x.html"' in page and "1,234" in page and "never" in page
    table = overview_markdown([row])
    assert HOSTILE not in table and "c\\|b" in table and report.resolve().as_uri() in table
    assert "no persona set yet" in overview_markdown([])
