"""Explore: the persona sets a team chose to show, compared side by side (sizes, top traits, geography).

Pure: the warehouse side hands in each set's personas and the member counts per region; this module turns
them into comparison tables and one self-contained HTML page. User text is escaped like the report's.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from persona_pipeline.core.domain import Persona
from persona_pipeline.core.render.charts import Bar, bar_chart
from persona_pipeline.core.render.html import escape as _e
from persona_pipeline.core.render.palette import persona_colours
from persona_pipeline.core.render.report import STYLE

TOP_TRAITS = 3
TOP_REGIONS = 3
HEAT_REGIONS = 10
MIN_REGION_MEMBERS = 20  # a region with fewer members of a persona gives a lift too noisy to show
MIN_REGION_LIFT = 1.1  # "over-represented": at least a tenth above the region's share of the whole set


@dataclass(frozen=True)
class ExploreSet:
    id: int
    name: str
    cohort: str
    build: int
    built_at: dt.datetime | None
    personas: list[Persona]

    @property
    def population(self) -> int:
        return sum(p.population for p in self.personas)


def sizes(sets: list[ExploreSet]) -> pd.DataFrame:
    """One row per persona of every shown set: population, share of its set, and its top traits."""
    rows = [
        {
            "persona_set": s.name,
            "persona_id": p.persona_id,
            "persona": p.name,
            "population": p.population,
            "share": p.share,
            "top_traits": [d.text for d in p.defining[:TOP_TRAITS]],
        }
        for s in sets
        for p in s.personas
    ]
    columns = ["persona_set", "persona_id", "persona", "population", "share", "top_traits"]
    return pd.DataFrame(rows, columns=columns)


def geography(counts: pd.DataFrame) -> pd.DataFrame:
    """Share of each persona living in each region, against its whole set (lift), from member counts.

    counts: persona_set, persona_id, region, members (region may be missing: those count as "unknown").
    """
    frame = counts.assign(region=counts["region"].fillna("unknown").astype(str))
    frame = frame.groupby(["persona_set", "persona_id", "region"], as_index=False)["members"].sum()
    persona_total = frame.groupby(["persona_set", "persona_id"])["members"].transform("sum")
    region_total = frame.groupby(["persona_set", "region"])["members"].transform("sum")
    set_total = frame.groupby("persona_set")["members"].transform("sum")
    frame["share"] = frame["members"] / persona_total
    frame["set_share"] = region_total / set_total
    frame["lift"] = frame["share"] / frame["set_share"]
    return frame.sort_values(["persona_set", "persona_id", "region"], ignore_index=True)


def top_regions(geo: pd.DataFrame, n: int = TOP_REGIONS) -> pd.DataFrame:
    """Each persona's most over-represented regions among those with enough members to trust the lift; a
    region it has less of than the set (×0.96) is not one, however large its share."""
    known = geo[
        (geo["region"] != "unknown")
        & (geo["members"] >= MIN_REGION_MEMBERS)
        & (geo["lift"] >= MIN_REGION_LIFT)
    ]
    ranked = known.sort_values(["persona_set", "persona_id", "lift", "region"], ascending=[1, 1, 0, 1])
    return ranked.groupby(["persona_set", "persona_id"], sort=False).head(n).reset_index(drop=True)


def _set_column(index: int, item: ExploreSet, geo: pd.DataFrame | None) -> str:
    colours = persona_colours(p.persona_id for p in item.personas)
    built = f"{item.built_at:%Y-%m-%d %H:%M}" if item.built_at else "–"
    chart = bar_chart(
        [Bar(p.name, p.share, colours[p.persona_id], f"{p.population:,} contacts") for p in item.personas],
        "percent",
        f"share of the cohort's contacts in {item.name}, %",
    )
    cards = []
    tops = top_regions(geo[geo["persona_set"] == item.name]) if geo is not None else None
    for p in item.personas:
        pid = p.persona_id
        traits = "".join(f"<li>{_e(d.text)}</li>" for d in p.defining[:TOP_TRAITS])
        regions = ""
        if tops is not None:
            mine = tops[tops["persona_id"] == pid]
            regions = "<p class='geo'><b>over-represented in</b> " + (
                ", ".join(
                    f"{_e(r.region)} <span class='muted'>({r.share:.1%}, ×{r.lift:.2f})</span>"
                    for r in mine.itertuples()
                )
                or "<span class='muted'>no region stands out</span>"
            )
            regions += "</p>"
        cards.append(
            f"<div class='card persona' style='border-top-color:{colours[pid]}'>"
            f"<div class='avatar small'>{p.avatar_svg}</div>"
            f"<h4 class='persona-name'>{_e(p.name)}</h4>"
            f"<p class='pop'><b>{p.population:,}</b> · {p.share:.1%}</p>"
            f"<ul>{traits}</ul>{regions}</div>"
        )
    heat = _heat_table(item, geo[geo["persona_set"] == item.name]) if geo is not None else ""
    return (
        f"<div class='set-column' data-set-index='{index}'>"
        f"<h2 class='set-name'>{_e(item.name)}</h2>"
        f"<p class='muted'>cohort {_e(item.cohort)} · {item.population:,} contacts · "
        f"{len(item.personas)} personas · build {item.build} · built {built}</p>"
        f"<h3>Sizes</h3>{chart}<h3>Personas and top traits</h3>{''.join(cards)}"
        f"{heat}</div>"
    )


def _heat_table(item: ExploreSet, geo: pd.DataFrame) -> str:
    """The set's largest regions as rows, its personas as columns: each persona's share living there."""
    if geo.empty:
        return ""
    totals = geo.groupby("region")["members"].sum().drop("unknown", errors="ignore")
    regions = totals.sort_values(ascending=False, kind="stable").head(HEAT_REGIONS).index.tolist()
    share = geo.pivot_table(index="region", columns="persona_id", values="share", fill_value=0.0)
    lift = geo.pivot_table(index="region", columns="persona_id", values="lift", fill_value=0.0)
    head = "<th>region</th>" + "".join(f"<th>{_e(p.name)}</th>" for p in item.personas)
    body = []
    for region in regions:
        cells = []
        for p in item.personas:
            pid = p.persona_id
            value = float(share.at[region, pid]) if pid in share.columns else 0.0
            ratio = float(lift.at[region, pid]) if pid in lift.columns else 0.0
            tone = "up" if ratio >= 1.2 else "down" if ratio <= 0.8 else ""
            cells.append(f"<td class='{tone}'>{value:.1%}</td>")
        body.append(f"<tr><th>{_e(region)}</th>{''.join(cells)}</tr>")
    return (
        "<h3>Geography</h3><table class='dist heat'>"
        f"<tr>{head}</tr>{''.join(body)}</table>"
        "<p class='muted'>Share of each persona living in the set's largest regions; green: at least 1.2× the "
        "set's own share there, red: at most 0.8×.</p>"
    )


EXTRA_STYLE = """
.sets{display:grid;grid-auto-flow:column;grid-auto-columns:minmax(420px,1fr);gap:20px;overflow-x:auto}
.set-column{background:#eef0f3;border-radius:10px;padding:12px 16px}.set-column .card{margin-bottom:12px}
.avatar.small svg{width:56px;height:56px}.card h4{margin:6px 0 2px}.geo{font-size:12px;margin:6px 0 0}
table.heat td.up{background:#d1fae5}table.heat td.down{background:#fee2e2}
"""


def render(sets: list[ExploreSet], geo: pd.DataFrame | None, geography_trait: str | None) -> str:
    """The Explore page: one column per shown persona set, side by side."""
    if sets:
        columns = "".join(_set_column(i, s, geo) for i, s in enumerate(sets))
        body = f"<div class='sets'>{columns}</div>"
    else:
        body = (
            "<p class='empty'>No built persona set is shown in Explore. Show one with "
            "<code>persona-pipeline persona-set explore NAME --show</code>.</p>"
        )
    note = (
        f"Geography by {_e(geography_trait)}."
        if geography_trait
        else "Geography: the trait catalog has no region trait (set PERSONA_GEOGRAPHY_TRAIT to name one)."
    )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Explore · persona sets</title>"
        f"<style>{STYLE}{EXTRA_STYLE}</style></head><body>"
        f"<header><h1>Explore</h1><p>{len(sets)} persona set(s) side by side. {note}</p></header>"
        f"<main>{body}</main></body></html>"
    )
