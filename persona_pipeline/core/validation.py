"""Pandera schemas generated from the trait catalog, and the quarantine of the rows they reject.

A bad row is never dropped silently: it goes to quarantine with the column, the value and the reason, and the
build goes on without it unless too large a share failed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

# pandera imports its pandas checks on the first validation (half a second, hypothesis included): at import
# time instead, so a build does not pay for it between reading the cohort and fitting
import pandera.backends.pandas.builtin_checks  # noqa: F401
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from persona_pipeline.core.traits import BOOLEAN_WORDS, Trait, TraitKind
from persona_pipeline.errors import ValidationError

QUARANTINE_COLUMNS = ["contact_id", "column", "value", "reason"]


def _reason(check: str, trait: Trait | None) -> str:
    text = str(check)
    if text.startswith("in_range") and trait is not None:
        return f"outside the declared range {trait.minimum:g}..{trait.maximum:g}"
    if text.startswith("greater_than_or_equal_to") and trait is not None:
        return f"below the declared minimum {trait.minimum:g}"
    if text.startswith("less_than_or_equal_to") and trait is not None:
        return f"above the declared maximum {trait.maximum:g}"
    if text.startswith("isin") and trait is not None:
        return f"not a declared level (expected one of {', '.join(trait.levels)})"
    if text == "field_uniqueness":
        return (
            "duplicate contact_id: every occurrence is quarantined, since none can be trusted over the others"
        )
    if text == "not_nullable":
        return "missing contact_id"
    if text.startswith("coerce_dtype"):
        expected = text.removeprefix("coerce_dtype(").rstrip(")").strip("'")
        return f"wrong type: cannot be read as {expected}"
    return text


# Beyond this magnitude a number's squares overflow float64 when features are standardized (mean and variance
# become inf, then nan, and every build fails); no trait people have is measured in numbers this large.
LARGEST_USABLE = 1e15


def _finite(series: pd.Series) -> pd.Series:
    """No +-inf; values that are not numbers at all are reported by the type coercion instead."""
    numbers = pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    return pd.Series(~np.isinf(numbers), index=series.index)


def _usable(series: pd.Series) -> pd.Series:
    """Finite numbers of a magnitude the features can standardize; missing values pass (nullable)."""
    numbers = pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    with np.errstate(invalid="ignore"):
        return pd.Series(~(np.abs(numbers) > LARGEST_USABLE) | np.isinf(numbers), index=series.index)


def schema_for(traits: list[Trait]) -> pa.DataFrameSchema:
    """One column per trait: numeric float in range and finite, categorical in its levels, boolean nullable."""
    columns: dict[str, pa.Column] = {
        "contact_id": pa.Column("int64", unique=True, nullable=False, coerce=True, report_duplicates="all")
    }
    for trait in traits:
        if trait.kind is TraitKind.NUMERIC:
            # both pass missing values themselves: pandera would otherwise copy the column without them
            # for each check (a 10M-contact cohort spent 2.6 s of its 4.7 s validation in those copies)
            checks = [
                pa.Check(_finite, name="finite", error="not a finite number (inf)", ignore_na=False),
                pa.Check(
                    _usable,
                    name="usable",
                    error=f"a magnitude beyond {LARGEST_USABLE:g}: not a usable value",
                    ignore_na=False,
                ),
            ]
            if trait.minimum is not None and trait.maximum is not None:
                checks.append(pa.Check.in_range(trait.minimum, trait.maximum))
            elif trait.minimum is not None:
                checks.append(pa.Check.ge(trait.minimum))
            elif trait.maximum is not None:
                checks.append(pa.Check.le(trait.maximum))
            columns[trait.name] = pa.Column("float64", checks=checks, nullable=True, coerce=True)
        elif trait.kind is TraitKind.BOOLEAN:
            columns[trait.name] = pa.Column("boolean", nullable=True, coerce=True)
        elif trait.kind is TraitKind.DATE:
            columns[trait.name] = pa.Column("datetime64[ns]", nullable=True, coerce=True)
        else:
            columns[trait.name] = pa.Column(checks=[pa.Check.isin(list(trait.levels))], nullable=True)
    return pa.DataFrameSchema(columns, strict=False, name="cohort_traits")


@dataclass
class ValidationResult:
    valid: pd.DataFrame
    quarantine: pd.DataFrame  # one row per failing cell: contact_id, column, value, reason
    total_rows: int

    @property
    def failed_rows(self) -> int:
        return self.total_rows - len(self.valid)

    @property
    def failed_share(self) -> float:
        return self.failed_rows / self.total_rows if self.total_rows else 0.0

    def summary(self) -> pd.DataFrame:
        """Failures counted by column and reason, for metadata and error messages."""
        if self.quarantine.empty:
            return pd.DataFrame(columns=["column", "reason", "rows"])
        grouped = self.quarantine.groupby(["column", "reason"], dropna=False).size()
        return grouped.rename("rows").reset_index().sort_values("rows", ascending=False, ignore_index=True)


def _normalize_booleans(frame: pd.DataFrame, traits: list[Trait]) -> pd.DataFrame:
    """Warehouses hand booleans back as 0/1 or 't'/'f': read those as booleans, leave anything else to fail."""
    for trait in traits:
        if trait.kind is TraitKind.BOOLEAN and trait.name in frame:
            column = frame[trait.name]
            if column.dtype == object or pd.api.types.is_string_dtype(column):
                mapped = column.map(
                    lambda v: BOOLEAN_WORDS.get(str(v).strip().lower(), v) if v is not None else v
                )
                frame[trait.name] = mapped
    return frame


def validate(frame: pd.DataFrame, traits: list[Trait]) -> ValidationResult:
    """Split rows into valid and quarantined; raise only when the frame as a whole is unusable."""
    missing = [c for c in ["contact_id", *(t.name for t in traits)] if c not in frame.columns]
    if missing:
        raise ValidationError(
            f"the cohort's data has no column {', '.join(repr(m) for m in missing)}; "
            f"columns present: {', '.join(map(str, frame.columns))}. "
            "Check the trait names in the persona set and the columns of the contacts table."
        )
    if frame.empty:
        raise ValidationError(
            "the cohort is empty: its SQL model returned no contacts; check the cohort's query"
        )
    # copy-on-write (pandas 3): the caller's frame is not changed by the normalizing below, without a copy
    frame = _normalize_booleans(frame.reset_index(drop=True), traits)
    schema = schema_for(traits)
    by_name = {t.name: t for t in traits}
    keep = np.ones(len(frame), dtype=bool)
    found: list[pd.DataFrame] = []
    while True:  # a failed type coercion hides the column's other checks: validate again without those rows
        try:
            candidates = frame if keep.all() else frame[keep]
            valid = schema.validate(candidates, lazy=True, inplace=True)  # inplace: no copy of a local frame
            break
        except SchemaErrors as exc:
            cases = exc.failure_cases
            # a failed coercion is also reported as a dtype failure of the same cell: keep one line for it
            cases = cases[cases["index"].notna() & ~cases["check"].astype(str).str.startswith("dtype(")]
            unlocated = exc.failure_cases[exc.failure_cases["index"].isna()]
            unlocated = unlocated[~unlocated["check"].astype(str).str.startswith("dtype(")]
            if cases.empty:
                raise ValidationError(
                    f"the cohort's data failed validation as a whole: {unlocated.to_dict('records')}"
                ) from exc
            found.append(cases)
            keep[np.unique(cases["index"].astype("int64").to_numpy())] = False
    if not found:
        return ValidationResult(
            valid.reset_index(drop=True), pd.DataFrame(columns=QUARANTINE_COLUMNS), len(frame)
        )
    cases = pd.concat(found, ignore_index=True)
    index = cases["index"].astype("int64").to_numpy()
    contact_ids = pd.to_numeric(frame["contact_id"], errors="coerce").to_numpy()
    quarantine = pd.DataFrame(
        {
            "contact_id": pd.array(contact_ids[index], dtype="Float64").astype("Int64"),
            "column": cases["column"].astype(str).to_numpy(),
            "value": [None if pd.isna(v) else str(v)[:200] for v in cases["failure_case"]],
            "reason": [
                _reason(c, by_name.get(col)) for c, col in zip(cases["check"], cases["column"], strict=True)
            ],
        }
    )
    # one line per failing cell, all its reasons together
    keys = ["contact_id", "column", "value"]
    quarantine = (
        quarantine.drop_duplicates()
        .groupby(keys, dropna=False, sort=False)["reason"]
        .agg("; ".join)
        .reset_index()[QUARANTINE_COLUMNS]
    )
    return ValidationResult(valid.reset_index(drop=True), quarantine, len(frame))
