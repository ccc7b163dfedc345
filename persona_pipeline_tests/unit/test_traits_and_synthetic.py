"""The trait catalog and the seeded generator."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from persona_pipeline.core.domain import did_you_mean
from persona_pipeline.core.synthetic import BUILTIN_CATALOG, generate
from persona_pipeline.core.traits import CatalogError, Trait, TraitCatalog, TraitKind, read_traits_file

END = dt.date(2026, 11, 1)


def test_catalog_yaml_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "traits.yaml"
    path.write_text(
        "traits:\n"
        "  - {name: age, kind: numeric, min: 18, max: 99, labels: {high: Seasoned, low: Young}}\n"
        "  - {name: tier, kind: categorical, levels: [gold, silver], cluster: false}\n"
        "  - {name: dog_owner, kind: boolean, labels: {true: Dog-Loving}}\n",
        encoding="utf-8",
    )
    catalog = TraitCatalog.from_yaml(path)
    assert catalog.names == ["age", "tier", "dog_owner"]
    assert catalog.default_clustering == ["age", "dog_owner"]
    assert catalog["dog_owner"].labels == {"true": "Dog-Loving"}
    assert TraitCatalog.from_json(catalog.to_json()) == catalog


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{name: Age, kind: numeric}", "lower case"),
        ("{name: age, kind: number}", "did you mean 'numeric'.*use one of numeric, categorical, boolean"),
        (
            "{name: tier, kind: categorical, lavels: [a, b]}",
            "unknown key.*'lavels' \\(did you mean 'levels'\\?\\)",
        ),
        ("{name: tier, kind: categorical, levels: [gold]}", "at least two values"),
        ("{name: age, kind: numeric, min: 5, max: 1}", "above max"),
        ("{name: contact_id, kind: numeric}", "reserved"),
    ],
)
def test_catalog_errors_name_the_entry(tmp_path: Path, entry: str, message: str) -> None:
    path = tmp_path / "traits.yaml"
    path.write_text(f"traits:\n  - {entry}\n", encoding="utf-8")
    with pytest.raises(CatalogError, match=message) as info:
        TraitCatalog.from_yaml(path)
    assert "trait #1" in str(info.value)


def test_unknown_trait_lists_the_known_ones() -> None:
    with pytest.raises(CatalogError, match="unknown trait.*'shoe_size'; known traits: age"):
        BUILTIN_CATALOG.select(["age", "shoe_size"])
    with pytest.raises(
        CatalogError,
        match="unknown trait.*'houshold_income' \\(did you mean 'household_income'\\?\\); known traits",
    ):
        BUILTIN_CATALOG.select(["houshold_income"])


def test_generator_is_deterministic_and_rich() -> None:
    first = generate(3_000, 20, seed=5, end_date=END)
    second = generate(3_000, 20, seed=5, end_date=END)
    pd.testing.assert_frame_equal(first.contacts, second.contacts)
    pd.testing.assert_frame_equal(first.orders, second.orders)
    pd.testing.assert_frame_equal(first.trait_history, second.trait_history)
    assert not first.contacts.equals(generate(3_000, 20, seed=6, end_date=END).contacts)

    original = (TraitKind.NUMERIC, TraitKind.CATEGORICAL, TraitKind.BOOLEAN)  # the kinds the generator draws
    kinds = {kind: sum(t.kind is kind for t in BUILTIN_CATALOG.traits) for kind in original}
    assert len(BUILTIN_CATALOG.traits) >= 20 and min(kinds.values()) >= 5
    assert len(first.contacts) == 3_000 and first.contacts["contact_id"].is_unique
    missing = first.contacts[BUILTIN_CATALOG.names].isna().mean()
    assert missing.between(0.03, 0.07).all(), missing
    assert 5 <= first.segments["segment"].nunique() <= 7
    assert set(first.orders["contact_id"]) <= set(first.contacts["contact_id"])
    assert (first.orders["amount"] > 0).all()


def test_history_rebuilds_todays_contacts() -> None:
    base = generate(2_000, 30, seed=3, end_date=END)
    history = base.trait_history
    current = history[history["valid_to"].isna()].set_index("contact_id").sort_index()
    contacts = base.contacts.set_index("contact_id").sort_index()
    assert list(current.index) == list(contacts.index)  # leavers are closed, arrivals are open
    for name in ("age", "urbanicity", "dog_owner"):
        left, right = current[name], contacts[name]
        assert ((left == right) | (left.isna() & right.isna())).all(), name
    changed = history.groupby("contact_id").size()
    assert (changed > 1).sum() > 0, "some contacts change traits during the history"
    closed = history.dropna(subset=["valid_to"])
    assert (closed["valid_to"] > closed["valid_from"]).all()
    leavers = set(history["contact_id"]) - set(base.contacts["contact_id"])
    assert leavers, "some contacts leave"
    assert np.all(history["valid_from"] <= pd.Timestamp(END))


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "age", "kind": "numeric", "labels": {"hgih": "Seasoned"}}, "labels for 'hgih'.*high, low"),
        ({"name": "age", "kind": "numeric", "min": 1, "minimum": 2}, "both 'min' and 'minimum'"),
        (
            {"name": "region", "kind": "categorical", "levels": ["n", "s"], "max": 3},
            "'max' applies to numeric",
        ),
        (
            {"name": "owner", "kind": "boolean", "levels": ["y", "n"]},
            "'levels' apply to categorical and ordinal",
        ),
        (
            {"name": "region", "kind": "categorical", "levels": ["n", "s"], "labels": {"e": "E"}},
            "labels for 'e'",
        ),
        ({"name": "size", "kind": "ordinal", "levels": ["s", "m", "l"], "colum": "Size"}, "unknown key"),
    ],
)
def test_traits_file_mistakes_are_refused_but_stored_catalogs_still_read(entry: dict, message: str) -> None:
    with pytest.raises(CatalogError, match=message):
        Trait.from_dict(entry)
    if "colum" not in entry:  # a catalog an earlier release stored is read as it is
        assert Trait.from_dict(entry, stored=True).name == entry["name"]


def test_levels_yaml_read_as_yes_no_values_are_refused_with_the_quoting_that_fixes_them(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "traits.yaml"
    path.write_text("traits:\n  - {name: approved, kind: categorical, levels: [yes, no, pending]}\n")
    with pytest.raises(
        CatalogError, match=r'level YAML read as True, not as a word; quote .*levels: \["yes", "no"\]'
    ):
        read_traits_file(path)
    path.write_text('traits:\n  - {name: approved, kind: categorical, levels: ["yes", "no", pending]}\n')
    assert read_traits_file(path).catalog["approved"].levels == ("yes", "no", "pending")


def test_ordinal_labels_may_name_a_side_or_a_level() -> None:
    trait = Trait.from_dict(
        {
            "name": "size",
            "kind": "ordinal",
            "levels": ["s", "m", "l"],
            "labels": {"high": "Big", "s": "Small"},
        }
    )
    assert trait.labels == {"high": "Big", "s": "Small"}


@given(st.sampled_from(["Cardholders LC", "Cardholders", "High Value", "Customers 2024"]), st.booleans())
def test_a_name_written_differently_is_suggested_before_a_closer_spelling(name: str, dashes: bool) -> None:
    """'cardholders-lc' meant 'Cardholders LC', not the nearer 'Cardholders'."""
    typed = name.lower().replace(" ", "-" if dashes else "_")
    choices = ["Cardholders LC", "Cardholders", "High Value", "Customers 2024"]
    assert did_you_mean(typed, choices) == f" (did you mean {name!r}?)"


def test_a_name_cut_short_is_a_near_miss_when_only_one_name_starts_so() -> None:
    """A trial typed 'Wag' for 'wage' and got no hint ('wagee' got one)."""
    assert did_you_mean("Wag", ["wage", "affairs"]) == " (did you mean 'wage'?)"
    assert did_you_mean("cus", ["customers", "customers_2024"]) == ""  # two start so: no guess
    assert did_you_mean("wa", ["wage"]) == ""  # two letters say too little


def test_a_level_listed_twice_is_named() -> None:
    with pytest.raises(CatalogError, match="lists the level 'Married' twice; keep one"):
        Trait.from_dict({"name": "maritl", "kind": "categorical", "levels": ["Single", "Married", "Married"]})
