"""The persona set report: one self-contained HTML file (no network) with Definition, Analysis and Flow tabs.

Charts are SVG drawn here; the little script that remains switches tabs, shows a day's counts on hover and
builds the from -> to matrix for two chosen days. User text reaches the page only escaped (html.escape) or
through textContent, never as markup.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from persona_pipeline.core.analysis import NO_ORDERS, OrderQuality, PurchaseWindow, purchase_table
from persona_pipeline.core.domain import NO_RULE, BuildSummary, Persona, PersonaSetStatus
from persona_pipeline.core.profiles import value_text
from persona_pipeline.core.render.charts import CHART_STYLE, Bar, bar_chart, nice_ticks, number, stacked_chart
from persona_pipeline.core.render.html import escape as _e
from persona_pipeline.core.render.html import script_json
from persona_pipeline.core.render.palette import (
    COHORT_COLOUR,
    OTHER_COLOUR,
    PALETTE,
    category_colours,
    persona_colours,
)
from persona_pipeline.core.traits import Trait, TraitKind

OTHER = "other categories"
MARKERS_UP_TO_DAYS = 62  # a point per day while the days are few enough to tell apart


@dataclass
class ReportData:
    set_name: str
    cohort: str
    build: BuildSummary
    personas: list[Persona]
    analysis: pd.DataFrame  # the long Analysis table
    flow_days: list[str] = field(default_factory=list)
    flow_counts: pd.DataFrame | None = None  # day, persona_id, members
    trajectories: list = field(default_factory=list)
    status: str = str(PersonaSetStatus.READY)
    built_at: dt.datetime | None = None
    show_in_explore: bool = True
    traits: dict[str, Trait] = field(default_factory=dict)  # the catalog's traits, for units
    currency: str = ""  # used when the Analysis predates its stored window


def persona_meta(personas: list[Persona]) -> dict[int, tuple[str, str]]:
    """persona_id -> (name, colour); 0 is the cohort, in grey."""
    colours = persona_colours(p.persona_id for p in personas)
    return {0: ("cohort", COHORT_COLOUR), **{p.persona_id: (p.name, colours[p.persona_id]) for p in personas}}


def _swatch(colour: str) -> str:
    return f"<i class='swatch' style='background:{colour}'></i>"


def header(data: ReportData) -> str:
    """Name, cohort, status, build date and whether Explore shows the set."""
    built = f"{data.built_at:%Y-%m-%d %H:%M} UTC" if data.built_at else "not built yet"
    explore = "shown in Explore" if data.show_in_explore else "hidden from Explore"
    return (
        f"<header><h1>{_e(data.set_name)}</h1><p class='meta'>Persona set on cohort <b>{_e(data.cohort)}</b>"
        f"<span class='status status-{_e(data.status)}'>{_e(data.status)}</span>"
        f"<span>build {data.build.build}, built {built}</span><span>{explore}</span></p></header>"
    )


def definition_tab(data: ReportData) -> str:
    meta = persona_meta(data.personas)
    cards = []
    for p in data.personas:
        traits = "".join(f"<li>{_e(d.text)}</li>" for d in p.defining)
        rules = (
            "".join(
                f"<li><b>rule</b> {_e(r.text)} <span class='muted'>({r.precision:.0%} precise, "
                f"covers {r.coverage:.0%})</span></li>"
                for r in p.rules
            )
            or f"<li><b>rule</b> <span class='muted'>{_e(NO_RULE)}</span></li>"
        )
        story = ""
        if p.interpretation is not None:
            ideas = "".join(f"<li>{_e(idea)}</li>" for idea in p.interpretation.ideas)
            story = f'<p class="summary">{_e(p.interpretation.summary)}</p>'
            if p.interpretation.prose:
                story += (
                    f'<p class="prose"><span class="muted">In {_e(p.interpretation.prose_by)}\'s words, from '
                    f"these figures:</span> {_e(p.interpretation.prose)}</p>"
                )
            story += f'<ul class="ideas">{ideas}</ul>'
        cards.append(
            f'<div class="card persona" style="border-top-color:{meta[p.persona_id][1]}">'
            f'<div class="avatar">{p.avatar_svg}</div>'
            f'<h3 class="persona-name">{_e(p.name)}</h3>'
            f'<p class="pop"><b>{p.population:,}</b> contacts · {p.share:.1%} of the cohort · persona {p.persona_id}</p>'
            f"<ul>{traits}{rules}</ul>{story}</div>"
        )
    build = data.build
    figure = build.identity_figure
    kept = f"<br>Since the previous build: {_e(figure.text())}" if figure is not None else ""
    stability = f"{build.stability:.2f}" if build.stability is not None else "not measured"
    summary = (
        f"<p class='muted'>Build {build.build} · {build.method} · {build.k} personas · {build.cohort_size:,} contacts in the "
        f"cohort ({build.quarantined:,} quarantined) · split-half stability {stability} (agreement of two "
        f"fits on halves of the cohort, 0 to 1){kept}<br>Number of personas: {_e(build.k_reason)}</p>"
    )
    rows = build.k_table()
    if rows:
        head = "".join(f"<th>{_e(c)}</th>" for c in rows[0])
        body = "".join("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in r.values()) + "</tr>" for r in rows)
        summary += (
            f"<details class='k-table'><summary>Why {build.k} personas: each k's "
            f"{'ICL (how well the data supports it, lower is better)' if 'ICL per contact' in rows[0] else 'fit gain, its gain against finer k'}"
            f", its smallest persona, its split-half stability and why it was or was not chosen</summary>"
            f"<table><tr>{head}</tr>{body}</table></details>"
        )
    return summary + f'<div class="cards">{"".join(cards)}</div>'


def _head_cells(meta: dict[int, tuple[str, str]], order: list[int]) -> str:
    return "".join(f"<th>{_swatch(meta[p][1])}{_e(meta[p][0])}</th>" for p in order)


def _share(share: float) -> str:
    """Whole percents from 10%, one decimal below: '0.4% ×0.73' rather than a '0%' that has a lift."""
    return f"{share:.0%}" if share >= 0.1 or share == 0 else f"{share:.1%}"


def _lift(pid: int, value: float | None) -> str:
    """A persona's ×lift against the cohort, green from 1.25, red to 0.8; nothing for the cohort itself."""
    lift = float(value) if value is not None else np.nan
    if not pid or not np.isfinite(lift):
        return ""
    tone = "up" if lift >= 1.25 else "down" if lift <= 0.8 else ""
    return f" <span class='lift {tone}'>×{lift:.2f}</span>"


def _distribution_table(
    rows: pd.DataFrame, meta: dict[int, tuple[str, str]], order: list[int], corner: str, medians: str = ""
) -> str:
    buckets = list(dict.fromkeys(rows["bucket"]))
    cells_by = {(int(r.persona_id), r.bucket): r for r in rows.itertuples()}
    body = []
    for bucket in buckets:
        cells = []
        for pid in order:
            match = cells_by.get((pid, bucket))
            if match is None:
                cells.append("<td></td>")
                continue
            share, lift_text = float(match.share), _lift(pid, match.lift)
            cells.append(
                f"<td><div class='cell-bar' style='width:{min(share, 1) * 100:.1f}%;background:{meta[pid][1]}'>"
                f"</div><span>{_share(share)}</span>{lift_text}</td>"
            )
        body.append(f"<tr><th class='bucket'>{_e(bucket)}</th>{''.join(cells)}</tr>")
    return (
        f"<div class='table-wrap'><table class='dist'><tr><th>{_e(corner)}</th>{_head_cells(meta, order)}</tr>"
        f"{''.join(body)}{medians}</table></div>"
    )


def _median_row(table: pd.DataFrame, trait: str, order: list[int], spec: Trait | None) -> str:
    summary = table[
        (table["section"] == "summary") & (table["trait"] == trait) & (table["bucket"] == "median")
    ]
    if summary.empty:
        return ""
    values = {int(r.persona_id): float(r.value) for r in summary.itertuples()}

    def shown(value: float | None) -> str:
        if value is None or not np.isfinite(value):
            return "–"
        return value_text(spec, value) if spec is not None else number(value)

    cells = "".join(f"<td>{_e(shown(values.get(pid)))}</td>" for pid in order)
    return f"<tr class='median'><th>median</th>{cells}</tr>"


def _known_row(table: pd.DataFrame, trait: str, order: list[int]) -> str:
    """'value known: 56% 100% …' under a trait some contacts lack: the shares above are of those who have it."""
    known = table[(table["section"] == "summary") & (table["trait"] == trait) & (table["bucket"] == "known")]
    if known.empty:
        return ""
    values = {int(r.persona_id): float(r.value) for r in known.itertuples()}
    cells = "".join(
        f"<td>{_share(values[pid]) if pid in values and np.isfinite(values[pid]) else '–'}</td>"
        for pid in order
    )
    return f"<tr class='median'><th>value known</th>{cells}</tr>"


def _trait_unit(spec: Trait | None) -> str:
    if spec is None or not spec.numeric_like:
        return ""
    if spec.kind is TraitKind.DATE:
        return "days"
    return spec.unit or (spec.description if spec.description and len(spec.description) < 24 else "")


def _purchases(data: ReportData, table: pd.DataFrame, meta: dict[int, tuple[str, str]]) -> str:
    purchases = purchase_table(table)
    window = PurchaseWindow.from_table(table)
    if purchases.empty:
        return (
            ""
            if window is None
            else f"<h2>Purchases</h2><p class='window'>{_e(window.text())} {_e(NO_ORDERS)}</p>"
        )
    money = window.currency if window is not None else data.currency
    frame = (
        window.text()
        if window is not None
        else "Order window not recorded (this Analysis predates it): run `persona-pipeline analyse` again."
    )
    out = [f"<h2>Purchases</h2><p class='window'>{_e(frame)}</p>"]
    head = (
        "<tr><th>persona</th><th>contacts</th><th>share of contacts</th>"
        f"<th>revenue ({_e(money)}, whole units)</th><th>share of revenue</th><th>orders</th><th>ordering customers</th>"
        f"<th>average order ({_e(money)})</th><th>orders per customer</th><th>revenue per contact ({_e(money)})</th></tr>"
    )
    body = "".join(
        f"<tr><th>{_swatch(meta[int(pid)][1])}{_e(meta[int(pid)][0])}</th>"
        f"<td>{number(r.contacts, 'count')}</td><td>{number(r.contact_share, 'percent')}</td>"
        f"<td>{number(r.revenue, 'count')}</td><td>{number(r.revenue_share, 'percent')}</td>"
        f"<td>{number(r.orders, 'count')}</td>"
        f"<td>{number(r.customers, 'count')} ({number(r.customer_share, 'percent')})</td>"
        f"<td>{number(r.average_order, 'money')}</td><td>{number(r.orders_per_customer)}</td>"
        f"<td>{number(r.revenue_per_contact, 'money')}</td></tr>"
        for pid, r in purchases.iterrows()
        if int(pid) in meta
    )
    out.append(f"<div class='table-wrap'><table class='figures purchases'>{head}{body}</table></div>")
    personas = [(int(pid), r) for pid, r in purchases.iterrows() if pid and int(pid) in meta]
    out.append("<h3>Share of revenue beside share of contacts</h3>")
    out.append(
        bar_chart(
            [
                Bar(
                    meta[pid][0],
                    r.revenue_share,
                    meta[pid][1],
                    f"from {r.contact_share:.1%} of contacts",
                    r.contact_share,
                )
                for pid, r in personas
            ],
            "percent",
            "share of the cohort's revenue (solid) and of its contacts (light), %",
        )
    )
    for column, title, kind, unit in (
        ("average_order", "Average order", "money", money),
        ("revenue_per_contact", "Revenue per contact", "money", money),
        ("orders_per_customer", "Orders per ordering customer", "number", "orders"),
    ):
        bars = [
            Bar(meta[int(pid)][0], float(r[column]), meta[int(pid)][1])
            for pid, r in purchases.iterrows()
            if int(pid) in meta
        ]
        axis = f"{title.lower()} ({unit}) over the window" if unit else title.lower()
        out.append(f"<h3>{_e(title)} ({_e(unit)})</h3>{bar_chart(bars, kind, axis, unit)}")
    out.append(products_section(table[table["section"] == "product"], meta, money))
    return "".join(out)


def products_section(products: pd.DataFrame, meta: dict[int, tuple[str, str]], money: str) -> str:
    """Product sales: a stacked share chart (distinct colour per category; past the palette, 'other') and a
    table of amounts with each persona's share and lift against the cohort."""
    if products.empty:
        return ""
    cohort = products[products["persona_id"] == 0].set_index("bucket")["value"].astype(float)
    categories = cohort.sort_values(ascending=False, kind="stable").index.astype(str).tolist()
    shown = categories if len(categories) <= len(PALETTE) else categories[: len(PALETTE) - 1]
    colours = category_colours(shown)
    if len(shown) < len(categories):
        colours[OTHER] = OTHER_COLOUR
    rows = []
    for pid, (name, _) in meta.items():
        mine = products[products["persona_id"] == pid].set_index("bucket")["share"].astype(float)
        shares = {c: float(mine.get(c, 0.0)) for c in shown}
        if len(shown) < len(categories):
            shares[OTHER] = float(mine.drop(labels=shown, errors="ignore").sum())
        rows.append((name, shares))
    chart = stacked_chart(
        rows, colours, "share of each persona's revenue by product category, %",
        lambda row, category, share: f"{row}: {category} {share:.1%} of revenue",
    )  # fmt: skip
    order = list(meta)
    cells_by = {(int(r.persona_id), str(r.bucket)): r for r in products.itertuples()}
    body = []
    for category in categories:
        cells = []
        for pid in order:
            r = cells_by.get((pid, category))
            if r is None:
                cells.append("<td>–</td>")
                continue
            lift_text = _lift(pid, r.lift)
            cells.append(
                f"<td>{number(float(r.value), 'count')}<br><span class='muted'>{float(r.share):.1%}</span>"
                f"{lift_text}</td>"
            )
        key = colours.get(category, OTHER_COLOUR)
        body.append(f"<tr><th>{_swatch(key)}{_e(category)}</th>{''.join(cells)}</tr>")
    table = (
        f"<p class='muted'>Revenue per category in {_e(money)}, below it the share of the persona's revenue "
        "and ×lift against the cohort's share.</p>"
        f"<div class='table-wrap'><table class='figures products'><tr><th>category</th>{_head_cells(meta, order)}"
        f"</tr>{''.join(body)}</table></div>"
    )
    return f"<h3>Product sales</h3>{chart}{table}"


def analysis_tab(data: ReportData) -> str:
    table = data.analysis
    meta = persona_meta(data.personas)
    order = list(meta)
    sizes = {int(r.persona_id): r for r in table[table["section"] == "size"].itertuples()}
    out = ["<h2>Sizes</h2>"]
    out.append(
        bar_chart(
            [
                Bar(
                    meta[pid][0], float(sizes[pid].share), meta[pid][1], f"{int(sizes[pid].count):,} contacts"
                )
                for pid in order
                if pid and pid in sizes
            ],
            "percent",
            "share of the cohort's contacts, %",
        )
    )
    out.append(_purchases(data, table, meta))
    for role, title in (("clustering", "Clustering traits"), ("analysis", "Analysis traits")):
        traits = table[(table["section"] == "trait") & (table["role"] == role)]
        if traits.empty:
            continue
        out.append(
            f"<h2>{title}</h2><p class='muted'>Share of each persona with the value (of those whose value is "
            "known); ×lift against the cohort; the median in the trait's unit.</p>"
        )
        for trait in dict.fromkeys(traits["trait"]):
            spec = data.traits.get(trait)
            unit = _trait_unit(spec)
            title_text = trait.replace("_", " ") + (f" ({unit})" if unit else "")
            out.append(f"<h3>{_e(title_text)}</h3>")
            out.append(
                _distribution_table(
                    traits[traits["trait"] == trait],
                    meta,
                    order,
                    "range"
                    if spec is not None and spec.numeric_like
                    else "value",  # the unit is in the heading
                    _median_row(table, trait, order, spec) + _known_row(table, trait, order),
                )  # fmt: skip
            )
    quality = table[table["section"] == "quality"]
    if not quality.empty:
        counts = {r.bucket: int(r.count) for r in quality.itertuples()}
        out.append(f"<p class='muted quality'>{_e(OrderQuality.sentence(counts))}</p>")
    return "".join(out)


def flow_tab(data: ReportData) -> str:
    if data.flow_counts is None or not data.flow_days:
        return (
            "<p class='muted'>No membership snapshots yet. Take them with "
            "<code>persona-pipeline flow snapshot --days 30</code>, then write this report again.</p>"
        )
    meta = persona_meta(data.personas)
    days = data.flow_days
    counts = data.flow_counts.pivot_table(index="day", columns="persona_id", values="members", fill_value=0)
    counts.index = [str(d) for d in counts.index]
    counts = counts.reindex(days).fillna(0)
    width, height, left, right, top, bottom = 900, 340, 78, 30, 16, 58
    ticks = nice_ticks(float(counts.to_numpy().max()), 5)
    peak = ticks[-1] or 1.0
    span = max(len(days) - 1, 1)

    def x(i: int) -> float:
        return left + (width - left - right) * i / span

    def y(v: float) -> float:
        return top + (height - top - bottom) * (1 - v / peak)

    parts = [
        f'<svg id="flow-chart" class="chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title>members per persona and day</title>'
    ]
    for tick in ticks:  # horizontal grid lines with their counts
        parts.append(
            f'<line x1="{left}" y1="{y(tick):.1f}" x2="{width - right}" y2="{y(tick):.1f}" '
            f'stroke="{"#9ca3af" if tick == 0 else "#e5e7eb"}"/>'
            f'<text x="{left - 8}" y="{y(tick) + 4:.1f}" text-anchor="end" class="val">{tick:,.0f}</text>'
        )
    step = max(1, int(np.ceil(len(days) / 7)))  # at most about seven dates on the x axis
    labelled = sorted({*range(0, len(days), step), len(days) - 1})
    date_width = 80  # px a date label takes at the chart's font size, with a margin
    if len(labelled) > 1 and x(labelled[-1]) - x(labelled[-2]) < 1.5 * date_width:
        labelled.pop(-2)  # the last date (drawn leftwards from its day) would overlap its neighbour
    for i in labelled:
        anchor = (
            "start"
            if i == 0 and len(days) > 1
            else "end"
            if i == len(days) - 1 and len(days) > 1
            else "middle"
        )
        parts.append(
            f'<line x1="{x(i):.1f}" y1="{y(0):.1f}" x2="{x(i):.1f}" y2="{y(0) + 5:.1f}" stroke="#9ca3af"/>'
            f'<text x="{x(i):.1f}" y="{y(0) + 19:.1f}" text-anchor="{anchor}" class="val">{_e(days[i])}</text>'
        )
    parts.append(
        f'<text x="{(left + width - right) / 2:.0f}" y="{height - 8}" text-anchor="middle" class="axis">'
        "day of the snapshot</text>"
        f'<text x="16" y="{(top + height - bottom) / 2:.0f}" text-anchor="middle" class="axis" '
        f'transform="rotate(-90 16 {(top + height - bottom) / 2:.0f})">contacts in the persona</text>'
    )
    for pid in counts.columns:
        if int(pid) not in meta or not pid:
            continue
        colour = meta[int(pid)][1]
        values = counts[pid].tolist()
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2.5" points="{points}"/>')
        if len(days) <= MARKERS_UP_TO_DAYS:
            parts.append(
                "".join(
                    f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}" stroke="#fff"/>'
                    for i, v in enumerate(values)
                )
            )
    parts.append(
        f'<line id="flow-cursor" x1="0" y1="{top}" x2="0" y2="{y(0):.1f}" stroke="#333" stroke-dasharray="3,3" '
        'visibility="hidden"/>'
        f'<rect id="flow-hit" x="{left}" y="{top}" width="{width - left - right}" height="{y(0) - top:.1f}" '
        'fill="transparent"/></svg>'
    )
    options = "".join(f"<option value='{i}'>{_e(d)}</option>" for i, d in enumerate(days))
    legend = "".join(
        f"<span class='key'><i style='background:{colour}'></i>{_e(name)}</span>"
        for pid, (name, colour) in meta.items()
        if pid
    )
    return (
        f"<h2>Members per persona over time</h2><div class='legend'>{legend}</div>"
        f"<div class='flow-wrap'>{''.join(parts)}<div id='flow-tip' class='tip' hidden></div></div>"
        "<h2>From → to between two days</h2>"
        f"<p>From <select id='from-day'>{options}</select> to <select id='to-day'>{options}</select></p>"
        "<div class='table-wrap'><table id='transition' class='matrix'></table></div>"
        "<p class='muted'>Contacts. Rows: persona on the first day; columns: on the second. “outside”: not in the "
        "set that day (joined later or left).</p>"
    )


STYLE = (
    """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:16px 28px}header h1{margin:0;font-size:20px;overflow-wrap:anywhere}
header p{margin:4px 0 0;color:#c9ced8}header .meta{display:flex;flex-wrap:wrap;gap:4px 14px;align-items:center}
.status{border-radius:10px;padding:1px 9px;font-size:12px;font-weight:600;background:#374151;color:#fff}
.status-ready{background:#047857}.status-errored{background:#b91c1c}.status-building,.status-queued{background:#b45309}
nav{display:flex;gap:4px;padding:0 28px;background:#1d2330}
nav button{background:none;border:0;color:#c9ced8;padding:10px 16px;font-size:14px;cursor:pointer;border-radius:6px 6px 0 0}
nav button.active{background:#f6f7f9;color:#1d2330;font-weight:600}main{padding:20px 28px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:16px}
.card{background:#fff;border-radius:10px;padding:16px;border-top:5px solid;box-shadow:0 1px 3px #0002;overflow-wrap:anywhere}
.card h3{margin:8px 0 2px}.card ul{padding-left:18px;margin:8px 0 0}.muted{color:#6b7280}
.chart{display:block;margin:6px 0 18px;max-width:100%;height:auto}.val{font-size:11px;fill:#4b5563}
.axis{font-size:12px;fill:#374151}
.table-wrap{max-width:100%;overflow-x:auto}
table.dist,table.matrix,table.figures{border-collapse:collapse;background:#fff;margin:6px 0 18px}
table td,table th{border:1px solid #e5e7eb;padding:4px 8px;font-size:12px;text-align:left}
table tr > th:first-child{white-space:nowrap}
table.figures td{text-align:right;white-space:nowrap}table.figures th{min-width:90px}
table.dist td{min-width:110px;position:relative;white-space:nowrap}
.cell-bar{position:absolute;left:0;top:0;bottom:0;opacity:.18}
tr.median th,tr.median td{background:#f3f4f6;font-weight:600}tr.median td{white-space:normal}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px;vertical-align:baseline}
.lift{font-size:11px;color:#6b7280}.lift.up{color:#047857;font-weight:600}.lift.down{color:#b91c1c}
.window{background:#eef2ff;border-left:4px solid #6366f1;padding:6px 10px;max-width:900px}
.flow-wrap{position:relative}.tip{position:absolute;background:#fff;border:1px solid #d1d5db;border-radius:6px;
padding:6px 10px;font-size:12px;box-shadow:0 2px 6px #0002;pointer-events:none;white-space:nowrap}
.tip-row i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px}
"""
    + CHART_STYLE
)

SCRIPT = """
(function(){
  const data = JSON.parse(document.getElementById('report-data').textContent);
  document.querySelectorAll('nav button').forEach(function(button){
    button.addEventListener('click', function(){
      document.querySelectorAll('nav button').forEach(function(b){b.classList.toggle('active', b===button);});
      document.querySelectorAll('main > section').forEach(function(s){s.hidden = s.id !== button.dataset.tab;});
    });
  });
  const name = function(p){ return p === -1 ? 'outside' : (data.names[p] || ('persona ' + p)); };
  const chart = document.getElementById('flow-chart');
  if (chart && data.days.length) {
    const tip = document.getElementById('flow-tip'), cursor = document.getElementById('flow-cursor');
    const hit = document.getElementById('flow-hit');
    hit.addEventListener('mousemove', function(event){
      const box = hit.getBoundingClientRect(), left = hit.x.baseVal.value, width = hit.width.baseVal.value;
      const scale = chart.viewBox.baseVal.width / chart.getBoundingClientRect().width;
      const px = (event.clientX - chart.getBoundingClientRect().left) * scale;
      const span = Math.max(data.days.length - 1, 1);
      const i = Math.max(0, Math.min(data.days.length - 1, Math.round((px - left) / width * span)));
      const x = left + width * i / span;
      cursor.setAttribute('x1', x); cursor.setAttribute('x2', x); cursor.setAttribute('visibility', 'visible');
      tip.replaceChildren();
      const head = document.createElement('b'); head.textContent = data.days[i]; tip.appendChild(head);
      data.personas.forEach(function(p){
        const line = document.createElement('div'); line.className = 'tip-row';
        const key = document.createElement('i'); key.style.background = data.colours[p]; line.appendChild(key);
        line.appendChild(document.createTextNode(
          name(p) + ': ' + (data.counts[p] ? data.counts[p][i] : 0).toLocaleString('en-US')));
        tip.appendChild(line);
      });
      tip.dataset.day = data.days[i];
      tip.hidden = false;
      const room = chart.getBoundingClientRect().width;  // open to the left near the right edge, never off the chart
      const at = x / scale + 12;
      tip.style.left = (at + tip.offsetWidth > room ? Math.max(0, x / scale - 12 - tip.offsetWidth) : at) + 'px';
      tip.style.top = '20px';
    });
    hit.addEventListener('mouseleave', function(){ tip.hidden = true; cursor.setAttribute('visibility', 'hidden'); });
    const from = document.getElementById('from-day'), to = document.getElementById('to-day');
    to.value = String(data.days.length - 1);
    const render = function(){
      const a = Number(from.value), b = Number(to.value), cells = {};
      data.paths.forEach(function(path){
        const at = function(d){ for (const s of path[0]) { if (s[1] <= d && d <= s[2]) return s[0]; } return -1; };
        const f = at(a), t = at(b);
        if (f === -1 && t === -1) return;
        cells[f + '|' + t] = (cells[f + '|' + t] || 0) + path[1];
      });
      const keys = data.personas.concat([-1]);
      const table = document.getElementById('transition'); table.replaceChildren();
      const head = table.insertRow(); head.insertCell().textContent = 'from \\\\ to';
      keys.forEach(function(k){ const th = document.createElement('th'); th.textContent = name(k); head.appendChild(th); });
      keys.forEach(function(f){
        const row = table.insertRow(); const th = document.createElement('th'); th.textContent = name(f); row.appendChild(th);
        keys.forEach(function(t){ row.insertCell().textContent = (cells[f + '|' + t] || 0).toLocaleString('en-US'); });
      });
    };
    from.addEventListener('change', render); to.addEventListener('change', render); render();
  }
})();
"""


def render(data: ReportData) -> str:
    """The whole report as one HTML document."""
    personas = [p.persona_id for p in data.personas]
    counts: dict[int, list[int]] = {}
    if data.flow_counts is not None and data.flow_days:
        pivot = data.flow_counts.pivot_table(
            index="day", columns="persona_id", values="members", fill_value=0
        )
        pivot.index = [str(d) for d in pivot.index]
        pivot = pivot.reindex(data.flow_days).fillna(0)
        counts = {int(p): [int(v) for v in pivot[p].tolist()] for p in pivot.columns}
    payload = {
        "names": {p.persona_id: p.name for p in data.personas},
        "colours": {pid: colour for pid, (_, colour) in persona_meta(data.personas).items()},
        "personas": personas,
        "days": data.flow_days,
        "counts": counts,
        "paths": [[[list(s) for s in segments], n] for segments, n in data.trajectories],
    }
    embedded = script_json(payload)
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_e(data.set_name)} · persona set</title><style>{STYLE}</style></head><body>"
        f"{header(data)}"
        "<nav><button class='active' data-tab='definition'>Definition</button>"
        "<button data-tab='analysis'>Analysis</button><button data-tab='flow'>Flow</button></nav>"
        f"<main><section id='definition'>{definition_tab(data)}</section>"
        f"<section id='analysis' hidden>{analysis_tab(data)}</section>"
        f"<section id='flow' hidden>{flow_tab(data)}</section></main>"
        f"<script type='application/json' id='report-data'>{embedded}</script>"
        f"<script>{SCRIPT}</script></body></html>"
    )
