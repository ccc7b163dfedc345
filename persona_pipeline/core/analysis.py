"""The Analysis view: sizes, trait distributions with lift, and purchase behaviour, per persona and for the cohort.

Everything comes out as one long table (section, persona, trait, bucket, count, share, value, lift), so the
report, the Dagster metadata and the CSV export read the same rows. Persona 0 is the whole cohort.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from persona_pipeline.core.features import as_numbers, category_codes, date_reference
from persona_pipeline.core.traits import Trait, TraitKind, is_calendar_year
from persona_pipeline.errors import AnalysisError

COHORT = 0
NO_ORDERS = (
    "No orders were counted in this window, so there are no revenue, average order or product figures: load "
    "orders with `persona-pipeline load CONTACTS --orders ORDERS`, or widen the window with --window-days."
)
MAX_BINS = 8
ANALYSIS_COLUMNS = ["section", "persona_id", "trait", "role", "bucket", "count", "share", "value", "lift"]


@dataclass(frozen=True)
class OrderQuality:
    """Orders left out of the revenue figures, counted so that nothing is mixed in silently (the rule of what
    counts is core/orders.py)."""

    used: int
    missing_amount: int
    negative_amount: int
    unknown_contact: int
    outside_cohort: int
    cancelled: int = 0
    not_counted: int = 0  # returned in full, or of zero amount: nothing was kept
    before_window: int = 0  # ordered before the window's first day (none of the figures' business)

    @staticmethod
    def sentence(counts: dict[str, int]) -> str:
        """One line for the CLI and the report; analyses stored before a count existed read it as 0."""
        c = {k: counts.get(k, 0) for k in OrderQuality.__dataclass_fields__}
        return (
            f"Orders used: {c['used']:,} (at their net amount, amount minus refunded). Left out: "
            f"{c['cancelled']:,} cancelled, {c['not_counted']:,} returned in full or of zero amount, "
            f"{c['missing_amount']:,} with a missing amount, {c['negative_amount']:,} with a negative amount, "
            f"{c['unknown_contact']:,} for unknown contacts, {c['outside_cohort']:,} by contacts outside the cohort"
            + ("." if "before_window" not in counts else f"; {c['before_window']:,} before the window.")
        )

    def rows(self) -> list[dict[str, object]]:
        return [
            {
                "section": "quality",
                "persona_id": COHORT,
                "trait": "orders",
                "bucket": name,
                "count": float(count),
            }
            for name, count in self.__dict__.items()
        ]


@dataclass(frozen=True)
class PurchaseWindow:
    """The frame of every purchase figure: the calendar days of the orders counted (both ends included, the
    last being the day of the latest order) and the currency of their amounts."""

    first_day: dt.date | None  # None: there were no orders at all
    last_day: dt.date | None
    days: int
    currency: str

    @staticmethod
    def ending(last_day: dt.date | None, days: int, currency: str) -> PurchaseWindow:
        """`days` calendar days up to and including `last_day`."""
        first = last_day - dt.timedelta(days=days - 1) if last_day is not None else None
        return PurchaseWindow(first, last_day, days, currency)

    def text(self) -> str:
        """'Orders of the 365 days from 2025-12-04 to 2026-12-03 (the day of the latest order); amounts in USD'."""
        if self.first_day is None:
            return (
                f"No orders yet; once there are, the window is the {self.days:,} days up to the latest order."
            )
        return (
            f"Orders of the {self.days:,} days from {self.first_day} to {self.last_day} (the day of the latest "
            f"order), at their net amount; amounts in {self.currency}."
        )

    def rows(self) -> list[dict[str, object]]:
        return [
            {"section": "window", "persona_id": COHORT, "bucket": "days", "value": float(self.days)},
            {"section": "window", "persona_id": COHORT, "bucket": "currency", "trait": self.currency},
            *(
                {"section": "window", "persona_id": COHORT, "bucket": bucket, "trait": day.isoformat()}
                for bucket, day in (("first_day", self.first_day), ("last_day", self.last_day))
                if day is not None
            ),
        ]

    @staticmethod
    def from_table(table: pd.DataFrame) -> PurchaseWindow | None:
        """The window an Analysis table was computed over; None for one stored before windows were kept."""
        rows = table[table["section"] == "window"]
        if rows.empty:
            return None
        by = {r.bucket: r for r in rows.itertuples()}
        day = {
            b: dt.date.fromisoformat(str(by[b].trait)) if b in by else None for b in ("first_day", "last_day")
        }
        return PurchaseWindow(
            day["first_day"], day["last_day"], int(by["days"].value), str(by["currency"].trait)
        )


def _nice(value: float, separators: bool = True) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}" if separators else f"{value:.0f}"
    return f"{value:.0f}" if float(value).is_integer() or abs(value) >= 10 else f"{value:.2g}"


def numeric_edges(values: np.ndarray, max_bins: int = MAX_BINS, integral: bool = False) -> np.ndarray:
    """Bin edges over the 1st..99th percentile on round numbers; the outer bins are open-ended.

    `integral`: the values are whole numbers (children, vehicles), so edges are too and a bin never covers
    half a unit (a bin "1.5–2" holds nobody); a few distinct values get a bin each.
    """
    known = values[np.isfinite(values)]
    if known.size == 0:
        return np.array([0.0, 1.0])
    low, high = np.percentile(known, [1, 99])
    if integral:
        low, high = float(np.floor(low)), float(np.ceil(high))
        if high - low + 1 <= max_bins:  # one bin per value
            return np.arange(low, high + 2, dtype=float)
    if high <= low:
        return np.array([low, low + 1.0])
    step = (high - low) / max_bins
    magnitude = 10 ** np.floor(np.log10(step))
    multiples = (1, 2, 5, 10) if integral else (1, 2, 2.5, 5, 10)
    step = min((m * magnitude for m in multiples if m * magnitude >= step), default=step)
    if integral:
        step = float(max(np.ceil(step), 1.0))
    start = np.floor(low / step) * step
    edges = np.arange(start, high + step, step)
    return edges if len(edges) >= 2 else np.array([start, start + step])


def bin_labels(
    edges: np.ndarray, integral: bool = False, years: bool = False, lowest: float | None = None
) -> list[str]:
    """'< 20', '20–30', '≥ 90'; for whole numbers the bounds people mean: '≤ 19', '20–29', '3', '≥ 90';
    `years`: calendar years, written without thousands separators ('≤ 2003', not '≤ 2,003'); `lowest`: the
    smallest value held, so a first bin of one whole value reads '0', not '≤ 0'."""

    def nice(value: float) -> str:
        return _nice(value, separators=not years)

    if len(edges) <= 2:
        return [f"{nice(edges[0])}"]
    if not integral:
        labels = [f"< {nice(edges[1])}"]
        labels += [f"{nice(a)}–{nice(b)}" for a, b in zip(edges[1:-2], edges[2:-1], strict=True)]
        return [*labels, f"≥ {nice(edges[-2])}"]
    single = lowest is not None and lowest >= edges[1] - 1
    labels = [nice(edges[1] - 1) if single else f"≤ {nice(edges[1] - 1)}"]
    labels += [
        nice(a) if b - 1 == a else f"{nice(a)}–{nice(b - 1)}"
        for a, b in zip(edges[1:-2], edges[2:-1], strict=True)
    ]
    return [*labels, f"≥ {nice(edges[-2])}"]


def _distribution(
    codes: np.ndarray, buckets: list[str], persona: np.ndarray, ids: np.ndarray, trait: Trait, role: str
) -> list[dict[str, object]]:
    """Count and share of each bucket among contacts whose value is known, per persona, with lift vs the cohort."""
    k, width = len(ids), len(buckets)
    known = codes >= 0
    index = np.searchsorted(ids, persona)
    counts = np.bincount(index[known] * width + codes[known], minlength=k * width).reshape(k, width)
    cohort = counts.sum(axis=0)
    cohort_share = cohort / max(int(cohort.sum()), 1)
    rows = []
    for j, pid in enumerate([COHORT, *ids.tolist()]):
        row_counts = cohort if pid == COHORT else counts[j - 1]
        total = max(int(row_counts.sum()), 1)
        for b, bucket in enumerate(buckets):
            share = row_counts[b] / total
            lift = share / cohort_share[b] if cohort_share[b] > 0 else np.nan
            rows.append(
                {
                    "section": "trait",
                    "persona_id": pid,
                    "trait": trait.name,
                    "role": role,
                    "bucket": bucket,
                    "count": float(row_counts[b]),
                    "share": float(share),
                    "lift": float(lift),
                }
            )
    return rows


def _known_rows(
    codes: np.ndarray, persona: np.ndarray, ids: np.ndarray, trait: Trait, role: str
) -> list[dict[str, object]]:
    """Where some values are missing: the share of the cohort and of each persona whose value is known (the
    distribution is of those alone; a trial read 44% of wages missing nowhere in the Analysis)."""
    known = codes >= 0
    if known.all():
        return []
    groups = [(COHORT, known), *((int(p), known[persona == p]) for p in ids)]
    return [
        {
            "section": "summary",
            "persona_id": pid,
            "trait": trait.name,
            "role": role,
            "bucket": "known",
            "value": float(flags.mean()) if flags.size else np.nan,
        }  # fmt: skip
        for pid, flags in groups
    ]


def trait_rows(frame: pd.DataFrame, persona: np.ndarray, trait: Trait, role: str) -> list[dict[str, object]]:
    """One trait's distribution per persona (bins, levels or share true) among contacts whose value is known,
    with the share known where some are not, and, for numbers, mean and median."""
    ids = np.unique(persona)
    column = frame[trait.name]
    if trait.kind in (TraitKind.NUMERIC, TraitKind.DATE):  # dates binned as days before their reference
        reference = date_reference(trait, column) if trait.kind is TraitKind.DATE else ""
        values = as_numbers(trait.kind, column, reference=reference)
        values = np.where(np.isfinite(values), values, np.nan)
        present = values[np.isfinite(values)]
        integral = bool(present.size and np.all(present == np.round(present)))
        edges = numeric_edges(values, integral=integral)
        codes = np.where(
            np.isnan(values), -1, np.clip(np.searchsorted(edges[1:-1], values, side="right"), 0, None)
        )
        years = bool(present.size) and is_calendar_year(float(np.median(present)), trait.unit, trait.name)
        lowest = float(present.min()) if present.size else None
        buckets = bin_labels(edges, integral, years and trait.kind is TraitKind.NUMERIC, lowest)
        if trait.kind is TraitKind.DATE:  # bins of days before the reference day, said so
            buckets = [f"{b} days before {reference}" for b in buckets]
        codes = np.where(codes >= len(buckets), len(buckets) - 1, codes)
        rows = _distribution(codes.astype(np.int64), buckets, persona, ids, trait, role)
        rows += _known_rows(codes, persona, ids, trait, role)
        series = pd.Series(values)
        for pid, group in [(COHORT, series), *((int(p), series[persona == p]) for p in ids)]:
            for stat, value in (("mean", group.mean()), ("median", group.median())):
                rows.append(
                    {
                        "section": "summary",
                        "persona_id": pid,
                        "trait": trait.name,
                        "role": role,
                        "bucket": stat,
                        "value": float(value) if pd.notna(value) else np.nan,
                    }  # fmt: skip
                )
        return rows
    if trait.kind is TraitKind.BOOLEAN:
        flags = column.astype("boolean")
        codes = np.where(
            flags.isna().to_numpy(), -1, np.where(flags.fillna(False).to_numpy(dtype=bool), 0, 1)
        )
        shares = [
            r
            for r in _distribution(codes, ["true", "false"], persona, ids, trait, role)
            if r["bucket"] == "true"
        ]
        return shares + _known_rows(codes, persona, ids, trait, role)
    codes = category_codes(column, trait.levels).astype(np.int64)
    return _distribution(codes, list(trait.levels), persona, ids, trait, role) + _known_rows(
        codes, persona, ids, trait, role
    )


def purchase_rows(members: pd.DataFrame, orders: pd.DataFrame) -> list[dict[str, object]]:
    """Revenue, its share, orders, average order size, orders per customer and sales by product category."""
    merged = orders.merge(members[["contact_id", "persona_id"]], on="contact_id", how="inner")
    population = members.groupby("persona_id").size()
    total_revenue = float(merged["amount"].sum())
    rows: list[dict[str, object]] = []
    groups = [(COHORT, merged, len(members))] + [
        (int(pid), merged[merged["persona_id"] == pid], int(population[pid]))
        for pid in sorted(population.index)
    ]
    category_share_cohort = merged.groupby("product_category")["amount"].sum() / (total_revenue or 1)
    for pid, part, size in groups:
        revenue = float(part["amount"].sum())
        n_orders = len(part)
        customers = int(part["contact_id"].nunique())
        metrics = {
            "revenue": revenue,
            "revenue_share": revenue / total_revenue if total_revenue else 0.0,
            "orders": float(n_orders),
            "customers": float(customers),
            "customer_share": customers / size if size else 0.0,
            "average_order": revenue / n_orders if n_orders else 0.0,
            "orders_per_customer": n_orders / customers if customers else 0.0,
            "revenue_per_contact": revenue / size if size else 0.0,
        }
        rows += [
            {"section": "revenue", "persona_id": pid, "bucket": k, "value": float(v)}
            for k, v in metrics.items()
        ]
        by_category = part.groupby("product_category").agg(
            amount=("amount", "sum"), orders=("amount", "size")
        )
        for category, item in by_category.iterrows():
            share = float(item["amount"]) / revenue if revenue else 0.0
            base = float(category_share_cohort.get(category, 0.0))
            rows.append(
                {
                    "section": "product",
                    "persona_id": pid,
                    "trait": "product_category",
                    "bucket": str(category),
                    "count": float(item["orders"]),
                    "share": share,
                    "value": float(item["amount"]),
                    "lift": share / base if base else np.nan,
                }
            )
    return rows


PURCHASE_COLUMNS = [
    "contacts", "contact_share", "revenue", "revenue_share", "orders", "customers", "customer_share",
    "average_order", "orders_per_customer", "revenue_per_contact",
]  # fmt: skip


def purchase_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per persona (index persona_id, 0 the cohort first): its size beside its purchases, in absolute figures
    and shares, so revenue share is read beside contact share. Empty when the Analysis has no orders."""
    revenue = table[table["section"] == "revenue"].pivot_table(
        index="persona_id", columns="bucket", values="value", aggfunc="first"
    )
    if revenue.empty or COHORT not in revenue.index or not revenue.loc[COHORT].get("orders", 0):
        return pd.DataFrame(columns=PURCHASE_COLUMNS)  # a table of zeros would read as "nobody buys"
    sizes = table[table["section"] == "size"].set_index("persona_id")
    revenue["contacts"] = sizes["count"].reindex(revenue.index).astype(float)
    revenue["contact_share"] = sizes["share"].reindex(revenue.index).astype(float)
    for column in PURCHASE_COLUMNS:
        if column not in revenue:
            revenue[column] = np.nan
    return revenue[PURCHASE_COLUMNS].sort_index()


def analyse(
    members: pd.DataFrame,
    traits_frame: pd.DataFrame,
    clustering: list[Trait],
    analysis: list[Trait],
    orders: pd.DataFrame,
    quality: OrderQuality,
    window: PurchaseWindow | None = None,
) -> pd.DataFrame:
    """The whole Analysis table for one persona set. `members` has contact_id and persona_id."""
    if members.empty:
        raise AnalysisError("the persona set has no members: build it before analysing it")
    frame = members[["contact_id", "persona_id"]].merge(traits_frame, on="contact_id", how="left")
    persona = frame["persona_id"].to_numpy()
    sizes = frame.groupby("persona_id").size()
    rows: list[dict[str, object]] = [
        {"section": "size", "persona_id": COHORT, "count": float(len(frame)), "share": 1.0}
    ] + [
        {"section": "size", "persona_id": int(pid), "count": float(n), "share": n / len(frame)}
        for pid, n in sizes.items()
    ]
    for role, traits in (("clustering", clustering), ("analysis", analysis)):
        for trait in traits:
            rows += trait_rows(frame, persona, trait, role)
    rows += purchase_rows(frame, orders)
    rows += quality.rows()
    rows += window.rows() if window is not None else []
    table = pd.DataFrame(rows)
    for column in ANALYSIS_COLUMNS:
        if column not in table:
            table[column] = None
    return table[ANALYSIS_COLUMNS]
