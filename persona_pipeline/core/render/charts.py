"""Charts for the report and Explore: horizontal bars laid out by the browser, so no label is ever clipped.

Bars are HTML (a CSS grid of label, track and value): long persona names wrap instead of being cut, as they
were in fixed-width SVG. Every chart has an axis with ticks and a title that states the unit. Labels are
escaped; colours come from core.render.palette.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from persona_pipeline.core.render.html import escape as _e


def nice_ticks(peak: float, count: int = 4) -> list[float]:
    """Round tick values from 0 to at least `peak` (0, 10, 20, 30, 40 for 38.3): the last is the axis end."""
    if not math.isfinite(peak) or peak <= 0:
        return [0.0, 1.0]
    raw = peak / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    ticks = [0.0]
    while ticks[-1] < peak - 1e-12:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def number(value: float | None, kind: str = "number", unit: str = "") -> str:
    """A figure as people read it, with its unit: '25.9%', '213.11 USD', '6.17', '14,525'."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if kind == "percent":
        text = f"{value:.1%}"
    elif kind == "money":
        text = f"{value:,.2f}"
    elif kind == "count":
        text = f"{value:,.0f}"
    else:
        text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"
    return f"{text} {unit}".strip()


def _tick_text(value: float, kind: str) -> str:
    if kind == "percent":
        return f"{value:.0%}" if value * 100 == round(value * 100) else f"{value:.1%}"
    return f"{value:,.0f}" if value == round(value) else f"{value:,.1f}"


def _axis(ticks: list[float], kind: str, title: str) -> str:
    end = ticks[-1] or 1.0
    marks = "".join(
        f"<b class='tick' style='left:{100 * t / end:.2f}%'>{_e(_tick_text(t, kind))}</b>" for t in ticks
    )
    return (
        f"<div class='bar-axis'><span></span><span class='ticks'>{marks}</span><span></span></div>"
        f"<div class='bar-axis'><span></span><figcaption class='axis-title'>{_e(title)}</figcaption><span></span></div>"
    )


@dataclass(frozen=True)
class Bar:
    """One row of a bar chart; `note` is shown after the value ('of contacts: 17.0%')."""

    label: str
    value: float | None
    colour: str
    note: str = ""
    compare: float | None = None  # a second, lighter bar on the same scale (share of contacts beside revenue)


def bar_chart(bars: Sequence[Bar], kind: str, axis_title: str, unit: str = "", css_class: str = "") -> str:
    """Horizontal bars with ticks and an axis title; `unit` follows each value ('USD')."""
    finite = [v for b in bars for v in (b.value, b.compare) if v is not None and math.isfinite(v)]
    ticks = nice_ticks(max(finite, default=0.0))
    end = ticks[-1] or 1.0

    def width(value: float | None) -> float:
        return 0.0 if value is None or not math.isfinite(value) else max(0.0, 100 * value / end)

    rows = []
    for bar in bars:
        compare = (
            f"<i class='compare' style='width:{width(bar.compare):.2f}%;background:{bar.colour}'></i>"
            if bar.compare is not None
            else ""
        )
        note = f" <span class='muted'>{_e(bar.note)}</span>" if bar.note else ""
        rows.append(
            f"<div class='bar-row'><span class='bar-label'>{_e(bar.label)}</span>"
            f"<span class='bar-track'>{compare}<i class='bar' style='width:{width(bar.value):.2f}%;"
            f"background:{bar.colour}'></i></span>"
            f"<span class='bar-value'>{_e(number(bar.value, kind, unit))}{note}</span></div>"
        )
    grid = 100 / max(len(ticks) - 1, 1)  # a faint line at every tick
    return (
        f"<figure class='bars {css_class}' style='--grid:{grid:.3f}%' role='img' aria-label='{_e(axis_title)}'>"
        f"{''.join(rows)}"
        f"{_axis(ticks, kind, axis_title)}</figure>"
    )


def stacked_chart(
    rows: Sequence[tuple[str, dict[str, float]]],
    colours: dict[str, str],
    axis_title: str,
    tooltip: Callable[[str, str, float], str],
) -> str:
    """One 100% bar per row split by category (shares summing to at most 1), the legend wrapping below.

    `colours` gives each category its colour, in legend order; `tooltip(row, category, share)` the hover text.
    """
    lines = []
    for label, shares in rows:
        parts = "".join(
            f"<i class='seg' style='width:{100 * shares.get(c, 0.0):.2f}%;background:{colour}' "
            f"title='{_e(tooltip(label, c, shares.get(c, 0.0)))}'></i>"
            for c, colour in colours.items()
            if shares.get(c, 0.0) > 0
        )
        lines.append(
            f"<div class='bar-row'><span class='bar-label'>{_e(label)}</span>"
            f"<span class='bar-track stacked'>{parts}</span><span class='bar-value'></span></div>"
        )
    legend = "".join(
        f"<span class='key' data-colour='{colour}'><i style='background:{colour}'></i>{_e(c)}</span>"
        for c, colour in colours.items()
    )
    return (
        f"<figure class='bars stacked-chart' style='--grid:25%' role='img' aria-label='{_e(axis_title)}'>"
        f"{''.join(lines)}"
        f"{_axis([0.0, 0.25, 0.5, 0.75, 1.0], 'percent', axis_title)}"
        f"<div class='bar-axis'><span></span><div class='legend'>{legend}</div><span></span></div></figure>"
    )


CHART_STYLE = """
figure.bars{margin:6px 0 22px;max-width:980px}
.bar-row,.bar-axis{display:grid;grid-template-columns:minmax(120px,240px) minmax(160px,1fr) minmax(110px,max-content);
gap:10px;align-items:center;margin:3px 0}
.bar-label{text-align:right;font-size:12px;overflow-wrap:anywhere}
.bar-track{position:relative;height:18px;background:linear-gradient(90deg,#e5e7eb 1px,transparent 1px) 0 0/var(--grid,25%) 100%}
.bar-track i{position:absolute;left:0;top:2px;bottom:2px;border-radius:3px}
.bar-track i.compare{top:0;bottom:0;opacity:.28;border-radius:0}
.bar-track.stacked{display:flex;background:#eef0f3}.bar-track.stacked i.seg{position:static;height:100%;border-radius:0}
.bar-value{font-size:12px;color:#374151;white-space:nowrap}
.bar-axis{margin-top:0}.ticks{position:relative;height:16px;border-top:1px solid #9ca3af}
.tick{position:absolute;top:2px;font-size:11px;font-weight:400;color:#4b5563;transform:translateX(-50%);white-space:nowrap}
.tick:first-child{transform:none}.tick:last-child{transform:translateX(-100%)}
.axis-title{text-align:center;font-size:12px;color:#4b5563}
.legend{display:flex;flex-wrap:wrap;gap:4px 16px;margin-top:6px;font-size:12px}
.legend .key{display:inline-flex;align-items:center;gap:5px}.legend i{display:inline-block;width:11px;height:11px;border-radius:2px}
"""
