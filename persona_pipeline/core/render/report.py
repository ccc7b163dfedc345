"""The persona set report: one self-contained HTML file (no network) with Definition, Analysis and Flow tabs.

Charts are SVG drawn here; the little script that remains switches tabs, shows a day's counts on hover and
builds the from -> to matrix for two chosen days. User text reaches the page only escaped (html.escape) or
through textContent, never as markup.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from persona_pipeline.core.analysis import OrderQuality
from persona_pipeline.core.domain import BuildSummary, Persona
from persona_pipeline.core.render.html import escape as _e
from persona_pipeline.core.render.html import script_json
from persona_pipeline.core.render.palette import COHORT_COLOUR, PALETTE
from persona_pipeline.core.render.palette import colour as _colour


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


def _fmt(value: float, kind: str = "number") -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    if kind == "percent":
        return f"{value:.1%}"
    if kind == "money":
        return f"{value:,.2f}"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"


def bar_chart(items: list[tuple[str, float, str]], kind: str = "number", title: str = "") -> str:
    """Horizontal bars: (label, value, colour). Labels are escaped."""
    width, row, label_w = 640, 26, 220
    peak = max((v for _, v, _ in items if v is not None and np.isfinite(v)), default=1) or 1
    height = row * len(items) + 10
    parts = [
        f'<svg class="chart" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
    ]
    if title:
        parts.append(f"<title>{_e(title)}</title>")
    for i, (label, value, colour) in enumerate(items):
        y = 5 + i * row
        bar = 0 if value is None or not np.isfinite(value) else (width - label_w - 90) * value / peak
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end" class="lbl">{_e(label)}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{max(bar, 0):.1f}" height="{row - 8}" rx="3" fill="{colour}"/>'
            f'<text x="{label_w + max(bar, 0) + 6:.1f}" y="{y + 16}" class="val">{_e(_fmt(value, kind))}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _persona_meta(personas: list[Persona]) -> dict[int, tuple[str, str]]:
    return {p.persona_id: (p.name, _colour(i)) for i, p in enumerate(personas)}


def definition_tab(data: ReportData) -> str:
    cards = []
    for i, p in enumerate(data.personas):
        traits = "".join(f"<li>{_e(d.text)}</li>" for d in p.defining)
        rules = "".join(
            f"<li><b>rule</b> {_e(r.text)} <span class='muted'>({r.precision:.0%} precise, "
            f"covers {r.coverage:.0%})</span></li>"
            for r in p.rules
        )
        story = ""
        if p.interpretation is not None:
            ideas = "".join(f"<li>{_e(idea)}</li>" for idea in p.interpretation.ideas)
            story = f'<p class="summary">{_e(p.interpretation.summary)}</p><ul class="ideas">{ideas}</ul>'
        cards.append(
            f'<div class="card persona" style="border-top-color:{_colour(i)}">'
            f'<div class="avatar">{p.avatar_svg}</div>'
            f'<h3 class="persona-name">{_e(p.name)}</h3>'
            f'<p class="pop"><b>{p.population:,}</b> contacts · {p.share:.1%} of the cohort · persona {p.persona_id}</p>'
            f"<ul>{traits}{rules}</ul>{story}</div>"
        )
    build = data.build
    figure = build.identity_figure
    kept = f"<br>Since the previous build: {_e(figure.text())}" if figure is not None else ""
    summary = (
        f"<p class='muted'>Build {build.build} · {build.k} personas · {build.cohort_size:,} contacts "
        f"({build.quarantined:,} quarantined) · stability {build.stability:.2f}{kept}<br>"
        f"Number of personas: {_e(build.k_reason)}</p>"
    )
    rows = build.k_table()
    if rows:
        head = "".join(f"<th>{_e(c)}</th>" for c in rows[0])
        body = "".join("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in r.values()) + "</tr>" for r in rows)
        summary += (
            f"<details class='k-table'><summary>Why {build.k} personas: each k's fit gain, its gain against "
            f"finer k, its smallest persona, its split-half stability and why it was or was not chosen</summary>"
            f"<table><tr>{head}</tr>{body}</table></details>"
        )
    return summary + f'<div class="cards">{"".join(cards)}</div>'


def _distribution_table(rows: pd.DataFrame, meta: dict[int, tuple[str, str]], order: list[int]) -> str:
    buckets = list(dict.fromkeys(rows["bucket"]))
    head = "<th></th>" + "".join(
        f"<th style='color:{meta[p][1] if p else COHORT_COLOUR}'>{_e(meta[p][0]) if p else 'cohort'}</th>"
        for p in order
    )
    body = []
    for bucket in buckets:
        cells = []
        for pid in order:
            match = rows[(rows["persona_id"] == pid) & (rows["bucket"] == bucket)]
            if match.empty:
                cells.append("<td></td>")
                continue
            share, lift = float(match["share"].iloc[0]), float(match["lift"].iloc[0])
            colour = meta[pid][1] if pid else COHORT_COLOUR
            tone = "up" if pid and lift >= 1.25 else "down" if pid and lift <= 0.8 else ""
            lift_text = f" <span class='lift {tone}'>×{lift:.2f}</span>" if pid and np.isfinite(lift) else ""
            cells.append(
                f"<td><div class='cell-bar' style='width:{min(share, 1) * 100:.1f}%;background:{colour}'></div>"
                f"<span>{share:.0%}</span>{lift_text}</td>"
            )
        body.append(f"<tr><th class='bucket'>{_e(bucket)}</th>{''.join(cells)}</tr>")
    return f"<table class='dist'><tr>{head}</tr>{''.join(body)}</table>"


def analysis_tab(data: ReportData) -> str:
    table = data.analysis
    meta = _persona_meta(data.personas)
    order = [0, *meta]
    out = []
    sizes = table[(table["section"] == "size") & (table["persona_id"] != 0)]
    out.append("<h2>Sizes</h2>")
    out.append(
        bar_chart(
            [
                (meta[int(r.persona_id)][0], float(r.share), meta[int(r.persona_id)][1])
                for r in sizes.itertuples()
            ],
            "percent",
            "share of the cohort",
        )
    )
    revenue = table[table["section"] == "revenue"]
    if not revenue.empty:
        out.append("<h2>Purchases</h2>")
        for metric, title, kind in (
            ("revenue_share", "Share of revenue", "percent"),
            ("average_order", "Average order size", "money"),
            ("orders_per_customer", "Orders per customer", "number"),
            ("revenue_per_contact", "Revenue per contact", "money"),
        ):
            items = [
                (
                    meta[int(r.persona_id)][0] if r.persona_id else "cohort",
                    float(r.value),
                    meta[int(r.persona_id)][1] if r.persona_id else COHORT_COLOUR,
                )  # fmt: skip
                for r in revenue[revenue["bucket"] == metric].itertuples()
                if r.persona_id or metric != "revenue_share"
            ]
            out.append(f"<h3>{title}</h3>{bar_chart(items, kind, title)}")
        out.append("<h3>Product sales (share of each persona's revenue)</h3>")
        out.append(_product_chart(table[table["section"] == "product"], meta))
    for role, title in (("clustering", "Clustering traits"), ("analysis", "Analysis traits")):
        traits = table[(table["section"] == "trait") & (table["role"] == role)]
        if traits.empty:
            continue
        out.append(
            f"<h2>{title}</h2><p class='muted'>Share of each persona with the value; ×lift against the cohort.</p>"
        )
        for trait in dict.fromkeys(traits["trait"]):
            summary = table[
                (table["section"] == "summary") & (table["trait"] == trait) & (table["bucket"] == "median")
            ]
            medians = ""
            if not summary.empty:
                medians = " · median " + ", ".join(
                    f"{_e(meta[int(r.persona_id)][0]) if r.persona_id else 'cohort'} {_fmt(float(r.value))}"
                    for r in summary.itertuples()
                )
            out.append(f"<h3>{_e(trait.replace('_', ' '))}<span class='muted'>{medians}</span></h3>")
            out.append(_distribution_table(traits[traits["trait"] == trait], meta, order))
    quality = table[table["section"] == "quality"]
    if not quality.empty:
        counts = {r.bucket: int(r.count) for r in quality.itertuples()}
        out.append(f"<p class='muted quality'>{_e(OrderQuality.sentence(counts))}</p>")
    return "".join(out)


def _product_chart(products: pd.DataFrame, meta: dict[int, tuple[str, str]]) -> str:
    categories = sorted(products["bucket"].unique())
    colours = {c: PALETTE[(i + 3) % len(PALETTE)] for i, c in enumerate(categories)}
    width, row, label_w = 700, 28, 220
    rows = [(0, "cohort"), *((pid, name) for pid, (name, _) in meta.items())]
    height = row * len(rows) + 40
    parts = [
        f'<svg class="chart" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
    ]
    for i, (pid, name) in enumerate(rows):
        y, x = 5 + i * row, float(label_w)
        parts.append(f'<text x="{label_w - 8}" y="{y + 17}" text-anchor="end" class="lbl">{_e(name)}</text>')
        mine = products[products["persona_id"] == pid].set_index("bucket")["share"]
        for category in categories:
            w = float(mine.get(category, 0.0)) * (width - label_w - 20)
            parts.append(
                f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" fill="{colours[category]}">'
                f"<title>{_e(category)}: {float(mine.get(category, 0.0)):.1%}</title></rect>"
            )
            x += w
    legend_y = 10 + row * len(rows)
    x = float(label_w)
    for category in categories:
        parts.append(
            f'<rect x="{x:.0f}" y="{legend_y}" width="10" height="10" fill="{colours[category]}"/>'
            f'<text x="{x + 14:.0f}" y="{legend_y + 9}" class="val">{_e(category)}</text>'
        )
        x += 14 + 7 * len(category) + 12
    parts.append("</svg>")
    return "".join(parts)


def flow_tab(data: ReportData) -> str:
    if data.flow_counts is None or not data.flow_days:
        return (
            "<p class='muted'>No membership snapshots yet. Take them with "
            "<code>persona-pipeline flow snapshot --days 30</code>, then write this report again.</p>"
        )
    meta = _persona_meta(data.personas)
    days = data.flow_days
    counts = data.flow_counts.pivot_table(index="day", columns="persona_id", values="members", fill_value=0)
    counts.index = [str(d) for d in counts.index]
    counts = counts.reindex(days).fillna(0)
    width, height, left, top, bottom = 900, 320, 60, 20, 40
    peak = max(float(counts.to_numpy().max()), 1.0)
    span = max(len(days) - 1, 1)

    def x(i: int) -> float:
        return left + (width - left - 20) * i / span

    def y(v: float) -> float:
        return top + (height - top - bottom) * (1 - v / peak)

    parts = [
        f'<svg id="flow-chart" class="chart" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f'<line x1="{left}" y1="{y(0):.1f}" x2="{width - 20}" y2="{y(0):.1f}" stroke="#ccc"/>',
        f'<text x="{left - 6}" y="{y(peak) + 4:.1f}" text-anchor="end" class="val">{_fmt(peak)}</text>',
        f'<text x="{left - 6}" y="{y(0) + 4:.1f}" text-anchor="end" class="val">0</text>',
        f'<text x="{left}" y="{height - 12}" class="val">{_e(days[0])}</text>',
        f'<text x="{width - 20}" y="{height - 12}" text-anchor="end" class="val">{_e(days[-1])}</text>',
    ]
    for pid in counts.columns:
        if int(pid) not in meta:
            continue
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(counts[pid].tolist()))
        parts.append(
            f'<polyline fill="none" stroke="{meta[int(pid)][1]}" stroke-width="2.5" points="{points}"/>'
        )
    parts.append(
        f'<line id="flow-cursor" x1="0" y1="{top}" x2="0" y2="{height - bottom}" stroke="#333" stroke-dasharray="3,3" '
        'visibility="hidden"/>'
        f'<rect id="flow-hit" x="{left}" y="{top}" width="{width - left - 20}" height="{height - top - bottom}" '
        'fill="transparent"/></svg>'
    )
    options = "".join(f"<option value='{i}'>{_e(d)}</option>" for i, d in enumerate(days))
    legend = "".join(
        f"<span class='key'><i style='background:{colour}'></i>{_e(name)}</span>"
        for name, colour in meta.values()
    )
    return (
        f"<h2>Members per persona over time</h2><div class='legend'>{legend}</div>"
        f"<div class='flow-wrap'>{''.join(parts)}<div id='flow-tip' class='tip' hidden></div></div>"
        "<h2>From → to between two days</h2>"
        f"<p>From <select id='from-day'>{options}</select> to <select id='to-day'>{options}</select></p>"
        "<table id='transition' class='matrix'></table>"
        "<p class='muted'>Rows: persona on the first day; columns: on the second. “outside”: not in the set that day "
        "(joined later or left).</p>"
    )


STYLE = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:16px 28px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#c9ced8}nav{display:flex;gap:4px;padding:0 28px;background:#1d2330}
nav button{background:none;border:0;color:#c9ced8;padding:10px 16px;font-size:14px;cursor:pointer;border-radius:6px 6px 0 0}
nav button.active{background:#f6f7f9;color:#1d2330;font-weight:600}main{padding:20px 28px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:16px}
.card{background:#fff;border-radius:10px;padding:16px;border-top:5px solid;box-shadow:0 1px 3px #0002}
.card h3{margin:8px 0 2px}.card ul{padding-left:18px;margin:8px 0 0}.muted{color:#6b7280}
.chart{display:block;margin:6px 0 18px;max-width:100%}.lbl{font-size:12px;fill:#1d2330}.val{font-size:11px;fill:#4b5563}
table.dist,table.matrix{border-collapse:collapse;background:#fff;margin:6px 0 18px}
table.dist td,table.dist th,table.matrix td,table.matrix th{border:1px solid #e5e7eb;padding:4px 8px;font-size:12px;text-align:left}
table.dist td{min-width:110px;position:relative}.cell-bar{position:absolute;left:0;top:0;bottom:0;opacity:.18}
.lift{font-size:11px;color:#6b7280}.lift.up{color:#047857;font-weight:600}.lift.down{color:#b91c1c}
.flow-wrap{position:relative}.tip{position:absolute;background:#fff;border:1px solid #d1d5db;border-radius:6px;
padding:6px 10px;font-size:12px;box-shadow:0 2px 6px #0002;pointer-events:none}
.legend .key{margin-right:14px;font-size:12px}.legend i{display:inline-block;width:10px;height:10px;margin-right:4px}
"""

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
        line.textContent = name(p) + ': ' + (data.counts[p] ? data.counts[p][i] : 0).toLocaleString('en-US');
        tip.appendChild(line);
      });
      tip.dataset.day = data.days[i];
      tip.hidden = false;
      tip.style.left = (x / scale + 12) + 'px'; tip.style.top = '20px';
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
        "personas": personas,
        "days": data.flow_days,
        "counts": counts,
        "paths": [[[list(s) for s in segments], n] for segments, n in data.trajectories],
    }
    embedded = script_json(payload)
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_e(data.set_name)} · persona set</title><style>{STYLE}</style></head><body>"
        f"<header><h1>{_e(data.set_name)}</h1><p>Persona set on cohort {_e(data.cohort)}</p></header>"
        "<nav><button class='active' data-tab='definition'>Definition</button>"
        "<button data-tab='analysis'>Analysis</button><button data-tab='flow'>Flow</button></nav>"
        f"<main><section id='definition'>{definition_tab(data)}</section>"
        f"<section id='analysis' hidden>{analysis_tab(data)}</section>"
        f"<section id='flow' hidden>{flow_tab(data)}</section></main>"
        f"<script type='application/json' id='report-data'>{embedded}</script>"
        f"<script>{SCRIPT}</script></body></html>"
    )
