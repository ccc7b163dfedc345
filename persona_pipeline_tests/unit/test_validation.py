"""Pandera validation from the catalog: every bad cell is quarantined with its reason, nothing else is lost."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from persona_pipeline.core.synthetic import BUILTIN_CATALOG
from persona_pipeline.core.validation import ValidationError, validate

TRAITS = BUILTIN_CATALOG.select(["age", "household_income", "urbanicity", "dog_owner"])


def _frame(n: int = 20) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "contact_id": np.arange(1, n + 1),
            "age": rng.integers(18, 90, n).astype(float),
            "household_income": rng.uniform(10, 300, n),
            "urbanicity": rng.choice(["urban", "suburban", "rural"], n).astype(object),
            "dog_owner": pd.array(rng.random(n) < 0.5, dtype="boolean"),
        }
    )


def test_bad_cells_are_quarantined_with_reasons() -> None:
    frame = _frame().astype({"age": object, "dog_owner": object})
    frame.loc[1, "age"] = "forty"
    frame.loc[2, "household_income"] = np.inf
    frame.loc[3, "urbanicity"] = "lunar"
    frame.loc[4, "contact_id"] = 1  # duplicates contact 1
    frame.loc[5, "dog_owner"] = "perhaps"
    frame.loc[6, "age"] = 250.0
    frame.loc[7, "household_income"] = np.nan  # missing is allowed: imputed later, not quarantined
    result = validate(frame, TRAITS)
    reasons = {(r.contact_id, r.column): r.reason for r in result.quarantine.itertuples()}
    assert reasons[(2, "age")].startswith("wrong type")
    assert "finite" in reasons[(3, "household_income")]
    assert "not a declared level" in reasons[(4, "urbanicity")]
    assert "duplicate contact_id" in reasons[(1, "contact_id")]
    assert reasons[(6, "dog_owner")].startswith("wrong type")
    assert "outside the declared range 18..100" in reasons[(7, "age")]
    assert result.failed_rows == 7  # both copies of contact 1, and rows 1, 2, 3, 5, 6
    assert 8 in set(result.valid["contact_id"]) and result.valid["household_income"].isna().sum() == 1
    assert result.valid["age"].dtype == "float64" and str(result.valid["dog_owner"].dtype) == "boolean"
    assert set(result.summary()["column"]) == {
        "age",
        "household_income",
        "urbanicity",
        "contact_id",
        "dog_owner",
    }


def test_booleans_from_warehouses_are_read() -> None:
    frame = _frame(4).astype({"dog_owner": object})
    frame["dog_owner"] = ["t", "f", 1, None]
    result = validate(frame, TRAITS)
    assert result.failed_rows == 0
    assert result.valid["dog_owner"].tolist()[:3] == [True, False, True]


def test_missing_column_and_empty_cohort_are_clear_errors() -> None:
    with pytest.raises(ValidationError, match="no column 'urbanicity'.*columns present"):
        validate(_frame().drop(columns=["urbanicity"]), TRAITS)
    with pytest.raises(ValidationError, match="cohort is empty"):
        validate(_frame().iloc[0:0], TRAITS)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ages=st.lists(
        st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(["x", "", "12"])),
        min_size=1,
        max_size=30,
    ),
    duplicate=st.booleans(),
)
def test_every_row_is_either_valid_or_quarantined(ages: list, duplicate: bool) -> None:
    frame = _frame(len(ages)).astype({"age": object})
    frame["age"] = ages
    if duplicate and len(ages) > 1:
        frame.loc[len(ages) - 1, "contact_id"] = 1
    result = validate(frame, TRAITS)
    quarantined = set(result.quarantine["contact_id"].dropna().astype(int))
    valid = set(result.valid["contact_id"])
    assert len(result.valid) + result.failed_rows == len(frame)
    assert not valid & quarantined
    ages_ok = result.valid["age"].dropna()
    assert ages_ok.between(18, 100).all() and np.isfinite(ages_ok).all()
