"""A seeded, realistic customer base drawn from hidden segments, so quality can be measured against the truth."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from persona_pipeline.core.traits import Trait, TraitCatalog, TraitKind

STATES = (
    "CA", "TX", "FL", "NY", "PA", "IL", "OH", "GA", "NC", "MI",
    "NJ", "VA", "WA", "AZ", "MA", "TN", "IN", "MO", "MD", "CO",
)  # fmt: skip
PRODUCT_CATEGORIES = (
    "apparel", "electronics", "home_garden", "pet_supplies", "outdoor_gear",
    "groceries", "beauty", "toys", "travel_gear", "books",
)  # fmt: skip


def _num(name, lo, hi, high, low, noun=False, cluster=True, desc=""):
    return Trait(name, TraitKind.NUMERIC, lo, hi, (), cluster, {"high": high, "low": low}, noun, desc)


def _cat(name, levels, labels, cluster=True, desc="", noun=False):
    return Trait(name, TraitKind.CATEGORICAL, None, None, tuple(levels), cluster, dict(labels), noun, desc)


def _bool(name, label, cluster=True, desc=""):
    return Trait(name, TraitKind.BOOLEAN, None, None, (), cluster, {"true": label}, False, desc)


BUILTIN_CATALOG = TraitCatalog(
    (
        _num("age", 18, 100, "Seasoned", "Young", desc="years"),
        _num("household_income", 0, 2000, "Affluent", "Budget-Minded", desc="thousand USD a year"),
        _num("home_value", 0, 10000, "High-Value-Home", "Modest-Home", desc="thousand USD"),
        _num("household_size", 1, 12, "Families", "Solo Households", noun=True, desc="people"),
        _num("years_at_residence", 0, 80, "Settled", "Mobile", desc="years"),
        _num("net_worth", -500, 50000, "Wealthy", "Starting-Out", desc="thousand USD"),
        _num("children", 0, 10, "Parents", "Child-Free Households", noun=True, desc="children at home"),
        _num("vehicles", 0, 8, "Multi-Car", "Car-Light", desc="vehicles in household"),
        _num("commute_minutes", 0, 180, "Long-Commute", "Short-Commute", desc="minutes one way"),
        _num("credit_score", 300, 850, "Credit-Strong", "Credit-Building", desc="FICO-like score"),
        _cat(
            "marital_status",
            ("single", "married", "partnered", "divorced", "widowed"),
            {"single": "Singles", "married": "Couples", "partnered": "Couples", "widowed": "Solo Households"},
            noun=True,
        ),
        _cat(
            "education",
            ("high_school", "some_college", "bachelors", "graduate"),
            {"graduate": "Graduate-Educated", "some_college": "Studying", "high_school": "Hands-On"},
        ),
        _cat(
            "urbanicity",
            ("urban", "suburban", "rural"),
            {"urban": "Urban", "suburban": "Suburban", "rural": "Rural"},
        ),
        _cat("home_ownership", ("owner", "renter"), {"owner": "Homeowning", "renter": "Renting"}),
        _cat("state", STATES, {}, cluster=False, desc="US state of residence"),
        _cat(
            "shopping_style",
            ("bargain", "brand_loyal", "convenience", "premium", "online_first"),
            {
                "bargain": "Deal-Seeking",
                "brand_loyal": "Brand-Loyal",
                "convenience": "Convenience-First",
                "premium": "Premium-Shopping",
                "online_first": "Online-First",
            },
        ),
        _cat("preferred_channel", ("email", "sms", "mail", "social"), {}, cluster=False),
        _bool("dog_owner", "Dog-Loving"),
        _bool("cat_owner", "Cat-Loving"),
        _bool("outdoors", "Outdoorsy"),
        _bool("travel", "Travel-Minded"),
        _bool("fitness", "Fitness-Focused"),
        _bool("gardening", "Green-Thumbed"),
        _bool("cooking", "Home-Cooking"),
        _bool("gaming", "Gaming"),
        _bool("luxury_goods", "Luxury-Loving"),
    )
)


@dataclass(frozen=True)
class Segment:
    """One hidden segment: numeric means and spreads, level weights, interest probabilities."""

    name: str
    weight: float
    numeric: dict[str, tuple[float, float]]
    categorical: dict[str, dict[str, float]]
    boolean: dict[str, float]
    orders_per_year: float
    lead_share: float
    order_amount: float
    categories: dict[str, float]


def _seg(name, weight, num, cat, boo, orders, leads, amount, categories) -> Segment:
    return Segment(name, weight, num, cat, boo, orders, leads, amount, categories)


SEGMENTS: tuple[Segment, ...] = (
    _seg(
        "urban_professionals", 0.18,
        {"age": (31, 5), "household_income": (95, 0.3), "home_value": (380, 0.35), "household_size": (1.6, 0.8),
         "years_at_residence": (2.5, 2), "net_worth": (90, 0.6), "children": (0.2, 0.5), "vehicles": (0.7, 0.6),
         "commute_minutes": (35, 12), "credit_score": (710, 40)},
        {"marital_status": {"single": 0.6, "partnered": 0.25, "married": 0.1, "divorced": 0.05},
         "education": {"bachelors": 0.55, "graduate": 0.35, "some_college": 0.1},
         "urbanicity": {"urban": 0.85, "suburban": 0.15}, "home_ownership": {"renter": 0.8, "owner": 0.2},
         "shopping_style": {"online_first": 0.45, "premium": 0.25, "convenience": 0.3}},
        {"dog_owner": 0.15, "cat_owner": 0.3, "outdoors": 0.3, "travel": 0.7, "fitness": 0.75, "gardening": 0.05,
         "cooking": 0.3, "gaming": 0.45, "luxury_goods": 0.3},
        6, 0.25, 60, {"apparel": 3, "electronics": 3, "beauty": 2, "travel_gear": 2, "books": 1, "groceries": 1},
    ),
    _seg(
        "suburban_families", 0.24,
        {"age": (41, 6), "household_income": (115, 0.3), "home_value": (430, 0.3), "household_size": (4.3, 0.9),
         "years_at_residence": (8, 4), "net_worth": (320, 0.6), "children": (2.3, 0.9), "vehicles": (2.2, 0.6),
         "commute_minutes": (32, 12), "credit_score": (735, 35)},
        {"marital_status": {"married": 0.85, "partnered": 0.1, "divorced": 0.05},
         "education": {"bachelors": 0.5, "some_college": 0.25, "graduate": 0.15, "high_school": 0.1},
         "urbanicity": {"suburban": 0.85, "urban": 0.1, "rural": 0.05}, "home_ownership": {"owner": 0.9, "renter": 0.1},
         "shopping_style": {"brand_loyal": 0.4, "convenience": 0.45, "bargain": 0.15}},
        {"dog_owner": 0.7, "cat_owner": 0.25, "outdoors": 0.55, "travel": 0.3, "fitness": 0.35, "gardening": 0.35,
         "cooking": 0.65, "gaming": 0.35, "luxury_goods": 0.1},
        9, 0.2, 75, {"toys": 3, "groceries": 3, "pet_supplies": 2, "apparel": 2, "home_garden": 2},
    ),
    _seg(
        "rural_homesteaders", 0.16,
        {"age": (53, 9), "household_income": (62, 0.3), "home_value": (210, 0.35), "household_size": (2.8, 1.0),
         "years_at_residence": (18, 7), "net_worth": (260, 0.6), "children": (0.8, 0.9), "vehicles": (2.7, 0.8),
         "commute_minutes": (28, 12), "credit_score": (705, 45)},
        {"marital_status": {"married": 0.7, "widowed": 0.1, "divorced": 0.1, "single": 0.1},
         "education": {"high_school": 0.5, "some_college": 0.35, "bachelors": 0.15},
         "urbanicity": {"rural": 0.85, "suburban": 0.15}, "home_ownership": {"owner": 0.85, "renter": 0.15},
         "shopping_style": {"bargain": 0.6, "brand_loyal": 0.3, "convenience": 0.1}},
        {"dog_owner": 0.75, "cat_owner": 0.45, "outdoors": 0.8, "travel": 0.15, "fitness": 0.2, "gardening": 0.75,
         "cooking": 0.55, "gaming": 0.15, "luxury_goods": 0.03},
        4, 0.35, 55, {"outdoor_gear": 3, "home_garden": 3, "pet_supplies": 3, "groceries": 2},
    ),
    _seg(
        "retired_travellers", 0.12,
        {"age": (71, 6), "household_income": (78, 0.3), "home_value": (520, 0.35), "household_size": (1.8, 0.6),
         "years_at_residence": (26, 8), "net_worth": (1100, 0.5), "children": (0.05, 0.2), "vehicles": (1.3, 0.6),
         "commute_minutes": (4, 5), "credit_score": (790, 30)},
        {"marital_status": {"married": 0.55, "widowed": 0.3, "divorced": 0.1, "single": 0.05},
         "education": {"bachelors": 0.4, "high_school": 0.3, "graduate": 0.2, "some_college": 0.1},
         "urbanicity": {"suburban": 0.6, "urban": 0.25, "rural": 0.15}, "home_ownership": {"owner": 0.92, "renter": 0.08},
         "shopping_style": {"brand_loyal": 0.5, "premium": 0.3, "convenience": 0.2}},
        {"dog_owner": 0.25, "cat_owner": 0.4, "outdoors": 0.35, "travel": 0.8, "fitness": 0.25, "gardening": 0.65,
         "cooking": 0.6, "gaming": 0.05, "luxury_goods": 0.25},
        5, 0.3, 90, {"travel_gear": 3, "books": 3, "home_garden": 2, "groceries": 2, "beauty": 1},
    ),
    _seg(
        "students_and_starters", 0.15,
        {"age": (23, 3), "household_income": (30, 0.35), "home_value": (230, 0.35), "household_size": (2.6, 1.1),
         "years_at_residence": (1.2, 1), "net_worth": (6, 1.0), "children": (0.05, 0.2), "vehicles": (0.5, 0.5),
         "commute_minutes": (22, 10), "credit_score": (630, 45)},
        {"marital_status": {"single": 0.85, "partnered": 0.15},
         "education": {"some_college": 0.65, "high_school": 0.2, "bachelors": 0.15},
         "urbanicity": {"urban": 0.7, "suburban": 0.25, "rural": 0.05}, "home_ownership": {"renter": 0.95, "owner": 0.05},
         "shopping_style": {"bargain": 0.5, "online_first": 0.5}},
        {"dog_owner": 0.1, "cat_owner": 0.2, "outdoors": 0.35, "travel": 0.3, "fitness": 0.5, "gardening": 0.03,
         "cooking": 0.15, "gaming": 0.75, "luxury_goods": 0.05},
        3, 0.45, 30, {"electronics": 3, "apparel": 3, "books": 2, "groceries": 1},
    ),
    _seg(
        "high_earning_executives", 0.15,
        {"age": (49, 7), "household_income": (230, 0.3), "home_value": (950, 0.35), "household_size": (3.2, 1.0),
         "years_at_residence": (11, 5), "net_worth": (1900, 0.5), "children": (1.3, 0.9), "vehicles": (2.4, 0.7),
         "commute_minutes": (42, 15), "credit_score": (800, 25)},
        {"marital_status": {"married": 0.8, "divorced": 0.1, "partnered": 0.1},
         "education": {"graduate": 0.6, "bachelors": 0.4},
         "urbanicity": {"suburban": 0.6, "urban": 0.4}, "home_ownership": {"owner": 0.95, "renter": 0.05},
         "shopping_style": {"premium": 0.7, "brand_loyal": 0.2, "convenience": 0.1}},
        {"dog_owner": 0.4, "cat_owner": 0.2, "outdoors": 0.4, "travel": 0.85, "fitness": 0.6, "gardening": 0.2,
         "cooking": 0.35, "gaming": 0.15, "luxury_goods": 0.75},
        7, 0.15, 180, {"electronics": 2, "apparel": 2, "travel_gear": 2, "beauty": 2, "home_garden": 1},
    ),
)  # fmt: skip

MONEY_TRAITS = frozenset({"household_income", "home_value", "net_worth"})
COUNT_TRAITS = frozenset({"household_size", "children", "vehicles"})


@dataclass
class SyntheticBase:
    """What `seed` writes: current contacts, the as-of trait history, orders, and the hidden truth."""

    contacts: pd.DataFrame
    trait_history: pd.DataFrame
    orders: pd.DataFrame
    segments: pd.DataFrame
    catalog: TraitCatalog


def _draw_traits(rng: np.random.Generator, segment_ids: np.ndarray, missing_share: float) -> pd.DataFrame:
    """Trait values for contacts of the given segments, with correlated money traits and MCAR gaps."""
    n = len(segment_ids)
    columns: dict[str, np.ndarray] = {}
    affluence = rng.standard_normal(n)  # shared by the money traits and credit: they move together
    family = rng.standard_normal(n)  # shared by household size and children
    for trait in BUILTIN_CATALOG.traits:
        if trait.kind is TraitKind.NUMERIC:
            values = np.empty(n)
            for s, seg in enumerate(SEGMENTS):
                idx = np.flatnonzero(segment_ids == s)
                mean, spread = seg.numeric[trait.name]
                own = rng.standard_normal(len(idx))
                if trait.name in MONEY_TRAITS:
                    values[idx] = mean * np.exp(spread * (0.7 * affluence[idx] + 0.71 * own))
                elif trait.name == "credit_score":
                    values[idx] = mean + spread * (0.6 * affluence[idx] + 0.8 * own)
                elif trait.name in ("household_size", "children"):
                    values[idx] = mean + spread * (0.75 * family[idx] + 0.66 * own)
                else:
                    values[idx] = mean + spread * own
            if trait.name in COUNT_TRAITS:
                values = np.round(values)
            elif trait.name in MONEY_TRAITS:
                values = np.round(values, 1)
            else:
                values = np.round(
                    values, 0 if trait.name in ("age", "credit_score", "commute_minutes") else 1
                )
            columns[trait.name] = np.clip(values, trait.minimum, trait.maximum)
        elif trait.kind is TraitKind.CATEGORICAL:
            values = np.empty(n, dtype=object)
            for s, seg in enumerate(SEGMENTS):
                idx = np.flatnonzero(segment_ids == s)
                weights = seg.categorical.get(trait.name)
                if weights is None:
                    probs = np.full(len(trait.levels), 1 / len(trait.levels))
                else:  # a little mass on every level: real segments are never pure
                    probs = np.array([weights.get(level, 0.0) + 0.02 for level in trait.levels])
                    probs /= probs.sum()
                values[idx] = np.asarray(trait.levels, dtype=object)[
                    rng.choice(len(trait.levels), len(idx), p=probs)
                ]
            columns[trait.name] = values
        else:
            probs = np.array([seg.boolean[trait.name] for seg in SEGMENTS])[segment_ids]
            columns[trait.name] = rng.random(n) < probs
    frame = pd.DataFrame(columns)
    for name in frame.columns:
        gaps = rng.random(n) < missing_share
        if gaps.any():
            kind = BUILTIN_CATALOG[name].kind
            if kind is TraitKind.BOOLEAN:
                frame[name] = frame[name].astype("boolean")
            elif kind is TraitKind.CATEGORICAL:
                frame[name] = frame[name].astype(object)
            frame.loc[gaps, name] = None if kind is TraitKind.CATEGORICAL else pd.NA
        if BUILTIN_CATALOG[name].kind is TraitKind.BOOLEAN:
            frame[name] = frame[name].astype("boolean")
        elif BUILTIN_CATALOG[name].kind is TraitKind.NUMERIC:
            frame[name] = frame[name].astype("float64")
    return frame


def generate(
    contacts: int = 20_000,
    days: int = 90,
    seed: int = 0,
    end_date: dt.date | None = None,
    missing_share: float = 0.05,
    daily_change_rate: float = 0.002,
    with_orders: bool = True,
) -> SyntheticBase:
    """Draw a customer base whose final day is `end_date`; random draws depend only on the seed."""
    if contacts < 1:
        raise ValueError("contacts must be at least 1")
    if days < 0:
        raise ValueError("days must be zero or more")
    rng = np.random.default_rng(seed)
    end = end_date or dt.date.today()
    start = end - dt.timedelta(days=days)
    leave_share = 0.03 if days else 0.0
    n_leaving = int(round(contacts * leave_share / (1 - leave_share)))
    total = contacts + n_leaving
    weights = np.array([s.weight for s in SEGMENTS])
    segment_ids = rng.choice(len(SEGMENTS), total, p=weights / weights.sum())
    traits = _draw_traits(rng, segment_ids, missing_share)

    # Arrival: most contacts exist before the history starts, the rest arrive during it; a few leave.
    arrives_late = rng.random(total) < (0.15 if days else 0.0)
    created_day = np.where(
        arrives_late, rng.integers(1, max(days, 1) + 1, total), -rng.integers(1, 1500, total)
    )
    leaves = np.zeros(total, dtype=bool)
    if n_leaving:
        leaves[rng.choice(np.flatnonzero(created_day < days), n_leaving, replace=False)] = True
    first_day = np.maximum(created_day, 0)
    left_day = np.where(leaves, first_day + 1 + (rng.random(total) * (days - first_day)).astype(np.int64), -1)

    contact_ids = np.arange(1, total + 1, dtype=np.int64)
    versions = [traits.assign(contact_id=contact_ids, valid_from=created_day)]
    current = traits.copy()
    version_day = np.maximum(created_day, 0)
    current_segment = segment_ids.copy()
    last_change = np.maximum(created_day, 0)

    # Trait changes: a life event redraws a few traits (or, now and then, the whole profile from a new segment).
    n_events = int(round(total * daily_change_rate * days))
    if n_events:
        who = rng.integers(0, total, n_events)
        when = rng.integers(1, days + 1, n_events)
        alive = (when > np.maximum(created_day[who], 0)) & ((left_day[who] < 0) | (when < left_day[who]))
        who, when = who[alive], when[alive]
        order = np.lexsort((when, who))
        who, when = who[order], when[order]
        keep = np.ones(len(who), dtype=bool)
        keep[1:] = (who[1:] != who[:-1]) | (when[1:] != when[:-1])
        who, when = who[keep], when[keep]
        rank = np.zeros(len(who), dtype=np.int64)
        for i in range(1, len(who)):
            rank[i] = rank[i - 1] + 1 if who[i] == who[i - 1] else 0
        for r in range(int(rank.max()) + 1 if len(rank) else 0):
            sel = rank == r
            ids, days_r = who[sel], when[sel]
            migrate = rng.random(len(ids)) < 0.1
            new_segments = np.where(migrate, rng.choice(len(SEGMENTS), len(ids), p=weights / weights.sum()),
                                    current_segment[ids])  # fmt: skip
            fresh = _draw_traits(rng, new_segments, missing_share)
            changed = rng.random((len(ids), len(BUILTIN_CATALOG.traits))) < 3 / len(BUILTIN_CATALOG.traits)
            changed[migrate] = True
            block = current.iloc[ids].reset_index(drop=True)
            for j, name in enumerate(BUILTIN_CATALOG.names):
                mask = changed[:, j]
                if mask.any():
                    block.loc[mask, name] = fresh.loc[mask, name]
            for name in BUILTIN_CATALOG.names:
                current.loc[current.index[ids], name] = block[name].to_numpy()
            current_segment[ids] = new_segments
            last_change[ids] = days_r
            version_day[ids] = days_r
            versions.append(block.assign(contact_id=contact_ids[ids], valid_from=days_r))

    history = pd.concat(versions, ignore_index=True)
    history = history.sort_values(["contact_id", "valid_from"], kind="stable").reset_index(drop=True)
    next_from = history.groupby("contact_id")["valid_from"].shift(-1)
    left_for = pd.Series(left_day, index=contact_ids).reindex(history["contact_id"]).to_numpy()
    valid_to = np.where(next_from.notna(), next_from, np.where(left_for >= 0, left_for, np.nan))
    base_day = pd.Timestamp(start)
    history["valid_from"] = base_day + pd.to_timedelta(history["valid_from"], unit="D")
    history["valid_to"] = base_day + pd.to_timedelta(valid_to, unit="D")
    history = history[["contact_id", "valid_from", "valid_to", *BUILTIN_CATALOG.names]]
    for trait in BUILTIN_CATALOG.traits:
        history[trait.name] = _restore_dtype(history[trait.name], trait)

    present = ~leaves
    contacts_frame = current[present].reset_index(drop=True)
    for trait in BUILTIN_CATALOG.traits:
        contacts_frame[trait.name] = _restore_dtype(contacts_frame[trait.name], trait)
    contacts_frame.insert(0, "contact_id", contact_ids[present])
    contacts_frame.insert(1, "created_at", base_day + pd.to_timedelta(created_day[present], unit="D"))
    contacts_frame.insert(2, "updated_at", base_day + pd.to_timedelta(last_change[present], unit="D"))
    truth = pd.DataFrame(
        {
            "contact_id": contact_ids[present],
            "segment": np.asarray([s.name for s in SEGMENTS], dtype=object)[current_segment[present]],
        }
    )
    orders = _draw_orders(rng, contact_ids[present], current_segment[present], contacts_frame, end) if with_orders else (
        pd.DataFrame(columns=["order_id", "contact_id", "ordered_at", "amount", "product_category"]))  # fmt: skip
    return SyntheticBase(contacts_frame, history, orders, truth, BUILTIN_CATALOG)


def _restore_dtype(column: pd.Series, trait: Trait) -> pd.Series:
    if trait.kind is TraitKind.NUMERIC:
        return pd.to_numeric(column, errors="coerce").astype("float64")
    if trait.kind is TraitKind.BOOLEAN:
        return column.astype("boolean")
    return column.astype(object).where(column.notna(), None)


def _draw_orders(
    rng: np.random.Generator,
    contact_ids: np.ndarray,
    segment_ids: np.ndarray,
    contacts: pd.DataFrame,
    end: dt.date,
) -> pd.DataFrame:
    """A year of orders: leads have none; amounts and categories follow the segment and the household's pets."""
    rate = np.array([s.orders_per_year for s in SEGMENTS])[segment_ids]
    lead = rng.random(len(contact_ids)) < np.array([s.lead_share for s in SEGMENTS])[segment_ids]
    counts = np.where(lead, 0, 1 + rng.poisson(np.maximum(rate - 1, 0)))
    owner = np.repeat(np.arange(len(contact_ids)), counts)
    n = len(owner)
    created = contacts["created_at"].to_numpy()
    end_ts = np.datetime64(pd.Timestamp(end), "s")
    earliest = np.maximum(created[owner].astype("datetime64[s]"), end_ts - np.timedelta64(365, "D"))
    span = (end_ts - earliest).astype(np.int64)
    ordered_at = earliest + (rng.random(n) * np.maximum(span, 1)).astype(np.int64).astype("timedelta64[s]")
    base_amount = np.array([s.order_amount for s in SEGMENTS])[segment_ids[owner]]
    amount = np.round(base_amount * np.exp(0.6 * rng.standard_normal(n)), 2)
    category = np.empty(n, dtype=object)
    dog = contacts["dog_owner"].fillna(False).to_numpy(dtype=bool)[owner]
    for s, seg in enumerate(SEGMENTS):
        idx = np.flatnonzero(segment_ids[owner] == s)
        weights = np.array([seg.categories.get(c, 0.3) for c in PRODUCT_CATEGORIES], dtype=float)
        probs = weights / weights.sum()
        category[idx] = np.asarray(PRODUCT_CATEGORIES, dtype=object)[
            rng.choice(len(PRODUCT_CATEGORIES), len(idx), p=probs)
        ]
    pet_swap = dog & (rng.random(n) < 0.15)
    category[pet_swap] = "pet_supplies"
    frame = pd.DataFrame(
        {
            "contact_id": contact_ids[owner],
            "ordered_at": pd.to_datetime(ordered_at),
            "amount": amount,
            "product_category": category,
        }
    )
    frame = frame.sort_values(["ordered_at", "contact_id"], kind="stable").reset_index(drop=True)
    frame.insert(0, "order_id", np.arange(1, len(frame) + 1, dtype=np.int64))
    return frame
