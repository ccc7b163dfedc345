"""Analysis and Flow computations, without Dagster or a warehouse."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from persona_pipeline.core import flow
from persona_pipeline.core.analysis import OrderQuality, analyse, bin_labels, numeric_edges, trait_rows
from persona_pipeline.core.synthetic import BUILTIN_CATALOG
from persona_pipeline.core.traits import Trait, TraitKind

TRAITS = BUILTIN_CATALOG.select(["age", "urbanicity", "dog_owner"])
EXTRA = BUILTIN_CATALOG.select(["state"])


def _members(n: int = 600, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    members = pd.DataFrame({"contact_id": np.arange(1, n + 1), "persona_id": rng.integers(1, 4, n)})
    traits = pd.DataFrame(
        {
            "contact_id": members["contact_id"],
            "age": np.where(rng.random(n) < 0.05, np.nan, rng.normal(45, 15, n).clip(18, 99)),
            "urbanicity": pd.Categorical(rng.choice(["urban", "suburban", "rural"], n)),
            "dog_owner": pd.array(rng.random(n) < 0.4, dtype="boolean"),
            "state": rng.choice(["CA", "TX", "NY"], n),
        }
    )
    return members, traits


def _orders(members: pd.DataFrame, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    who = rng.choice(members["contact_id"], 900)
    return pd.DataFrame(
        {
            "contact_id": who,
            "amount": rng.gamma(2.0, 40.0, 900).round(2),
            "product_category": rng.choice(["books", "toys", "pet_supplies"], 900),
        }
    )


def test_distributions_sum_to_one_and_lift_compares_with_the_cohort() -> None:
    members, traits = _members()
    orders = _orders(members)
    table = analyse(members, traits, TRAITS, EXTRA, orders, OrderQuality(len(orders), 0, 0, 0, 0))
    dist = table[table["section"] == "trait"]
    for (pid, trait), group in dist.groupby(["persona_id", "trait"]):
        if trait != "dog_owner":  # booleans keep only the share true
            assert abs(group.share.sum() - 1) < 1e-9, (pid, trait)
    cohort = dist[dist["persona_id"] == 0]
    assert np.allclose(cohort["lift"].dropna(), 1.0)
    one = dist[
        (dist["persona_id"] == 2) & (dist["trait"] == "urbanicity") & (dist["bucket"] == "rural")
    ].iloc[0]
    mine = traits[members["persona_id"] == 2]
    share = (mine["urbanicity"] == "rural").mean()
    assert (
        one["share"] == share and abs(one["lift"] - share / (traits["urbanicity"] == "rural").mean()) < 1e-12
    )
    assert set(table[table["role"] == "analysis"]["trait"]) == {"state"}
    ages = dist[(dist["trait"] == "age") & (dist["persona_id"] == 0)]
    assert ages["count"].sum() == traits["age"].notna().sum()  # every known age lands in exactly one bin


def test_purchase_metrics_match_a_direct_computation() -> None:
    members, traits = _members()
    orders = _orders(members)
    table = analyse(members, traits, TRAITS, [], orders, OrderQuality(len(orders), 1, 2, 3, 4))
    revenue = table[table["section"] == "revenue"].pivot_table(
        index="persona_id", columns="bucket", values="value"
    )
    merged = orders.merge(members, on="contact_id")
    for pid, part in merged.groupby("persona_id"):
        assert np.isclose(revenue.loc[pid, "revenue"], part["amount"].sum())
        assert np.isclose(revenue.loc[pid, "average_order"], part["amount"].mean())
        assert np.isclose(revenue.loc[pid, "orders_per_customer"], len(part) / part["contact_id"].nunique())
    assert np.isclose(revenue.drop(index=0)["revenue_share"].sum(), 1.0)
    products = table[(table["section"] == "product") & (table["persona_id"] == 1)]
    assert np.isclose(products["share"].sum(), 1.0)
    quality = dict(
        zip(
            table[table["section"] == "quality"]["bucket"],
            table[table["section"] == "quality"]["count"],
            strict=True,
        )
    )
    assert quality == {
        "used": 900,
        "missing_amount": 1,
        "negative_amount": 2,
        "unknown_contact": 3,
        "outside_cohort": 4,
        "cancelled": 0,
        "not_counted": 0,
        "before_window": 0,
    }


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=200))
def test_numeric_edges_are_increasing(values: list[float]) -> None:
    edges = numeric_edges(np.asarray(values))
    assert len(edges) >= 2 and np.all(np.diff(edges) > 0)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(-50, 5000), min_size=1, max_size=300))
def test_whole_numbers_get_whole_bins_that_each_can_hold_a_value(values: list[int]) -> None:
    """Counts never get half-unit bins (a "1.5–2" bin holds nobody): edges are whole, every bin's stated
    range holds a whole number, and a value falls in the bin whose label names it."""
    data = np.asarray(values, dtype=float)
    edges = numeric_edges(data, integral=True)
    assert np.all(edges == np.round(edges)) and np.all(np.diff(edges) >= 1)
    labels = bin_labels(edges, integral=True, lowest=float(data.min()))
    assert len(labels) == max(len(edges) - 1, 1)
    if len(labels) > 1:  # '≤ 0' only where something lies below: a first bin of one value names it ('0')
        assert labels[0].startswith("≤") == (data.min() < edges[1] - 1), (labels[0], data.min())
    for label in labels:
        assert "." not in label
    codes = np.clip(np.searchsorted(edges[1:-1], data, side="right"), 0, len(labels) - 1)
    for value, code in zip(data, codes, strict=True):
        label = labels[code]
        numbers = [float(n.replace(",", "")) for n in re.findall(r"-?[\d,]+", label)]
        if label.startswith("≤"):
            assert value <= numbers[0]
        elif label.startswith("≥"):
            assert value >= numbers[0]
        elif len(numbers) == 2 and "–" in label:
            assert numbers[0] <= value <= numbers[1]
        elif len(labels) > 1:
            assert value == numbers[0]


DAY0 = dt.date(2026, 1, 1)


@st.composite
def histories(draw: st.DrawFn) -> pd.DataFrame:
    rows = []
    for contact in range(1, draw(st.integers(1, 25)) + 1):
        day = draw(st.integers(0, 5))
        for _ in range(draw(st.integers(1, 4))):
            length = draw(st.one_of(st.none(), st.integers(1, 6)))
            start = pd.Timestamp(DAY0) + pd.Timedelta(days=day)
            stop = None if length is None else start + pd.Timedelta(days=length)
            rows.append(
                {
                    "contact_id": contact,
                    "persona_id": draw(st.integers(1, 3)),
                    "valid_from": start,
                    "valid_to": stop,
                }
            )
            if length is None:
                break
            day += length + draw(st.integers(0, 2))  # a gap: the contact left and came back
    frame = pd.DataFrame(rows)
    frame["valid_to"] = pd.to_datetime(frame["valid_to"])
    return frame


@settings(max_examples=80, deadline=None)
@given(history=histories(), picks=st.lists(st.integers(0, 20), min_size=2, max_size=6, unique=True))
def test_counts_transitions_and_trajectories_agree_with_day_by_day(
    history: pd.DataFrame, picks: list[int]
) -> None:
    days = sorted(DAY0 + dt.timedelta(days=p) for p in picks)
    counts = flow.daily_counts(history, days)
    for day in days:
        members = flow.membership_on(history, day)
        expected = members.value_counts()
        got = counts[counts["day"] == day].set_index("persona_id")["members"]
        assert all(got.get(p, 0) == n for p, n in expected.items())
        assert got.sum() == len(members)
    paths = flow.trajectories(history, days)
    for a, b in [(0, len(days) - 1), (len(days) // 2, 0)]:
        direct = flow.transitions(history, days[a], days[b]).sort_values(
            ["from_persona", "to_persona"], ignore_index=True
        )
        from_paths = flow.transitions_from_trajectories(paths, a, b)
        pd.testing.assert_frame_equal(direct.reset_index(drop=True), from_paths, check_dtype=False)


def test_calendar_years_are_binned_without_thousands_separators() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"survey_year": rng.integers(2003, 2010, 600), "income": rng.normal(5_000, 900, 600)}
    )
    persona = np.repeat([1, 2], 300)
    year_rows = trait_rows(frame, persona, Trait("survey_year", TraitKind.NUMERIC), "analysis")
    buckets = {r["bucket"] for r in year_rows if r["section"] == "trait"}
    assert buckets and not any("," in b for b in buckets) and "2006" in buckets
    money_rows = trait_rows(frame, persona, Trait("income", TraitKind.NUMERIC, unit="USD"), "analysis")
    assert any("," in r["bucket"] for r in money_rows if r["section"] == "trait")  # 5,000 still grouped


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 60), min_size=1, max_size=6, unique=True),
    st.booleans(),
    st.integers(0, 60),
    st.one_of(st.none(), st.integers(1, 30)),
)
def test_a_new_membership_row_never_overlaps_the_contacts_others(
    cuts: list[int], last_open: bool, start: int, length: int | None
) -> None:
    """Whatever rows a contact has (back to back, the last open or not), a new row [start, start + length)
    written after make_room's ends and drops leaves the contact's intervals disjoint, the new one whole."""
    day = pd.Timestamp("2026-01-01")
    cuts = sorted(cuts)
    stops = [*cuts[1:], None if last_open else cuts[-1] + 5]
    existing = pd.DataFrame(
        {
            "contact_id": 7,
            "valid_from": [day + pd.Timedelta(days=c) for c in cuts],
            "valid_to": [pd.NaT if s is None else day + pd.Timedelta(days=s) for s in stops],
        }
    )
    new = pd.DataFrame(
        {
            "contact_id": [7],
            "valid_from": [day + pd.Timedelta(days=start)],
            "valid_to": [pd.NaT if length is None else day + pd.Timedelta(days=start + length)],
        }
    )
    none = existing.iloc[:0]
    ends, drop = flow.make_room(existing, new, none, none[["contact_id", "valid_from"]])
    kept = existing.merge(drop.assign(gone=True), on=["contact_id", "valid_from"], how="left")
    kept = kept[kept["gone"].isna()].drop(columns="gone").set_index("valid_from")
    kept.loc[ends["valid_from"], "valid_to"] = ends["valid_to"].to_numpy()
    rows = pd.concat([kept.reset_index(), new], ignore_index=True).sort_values("valid_from")
    stop = rows["valid_to"].fillna(pd.Timestamp.max)
    assert (rows["valid_from"].shift(-1).iloc[:-1] >= stop.iloc[:-1]).all(), rows
    assert len(rows[rows["valid_from"] == new["valid_from"].iloc[0]]) == 1
