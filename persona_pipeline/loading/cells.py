"""Typing a file's cells, one chunk at a time: every value checked against its trait, every bad cell a reject
with its line, column and reason; a row with any rejected cell is left out whole.

Whole-file facts (duplicate ids, each date column's format) come from a survey of the whole file first
(`Survey`), so a chunk never decides alone what the file means.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from persona_pipeline.core.dates import BLANK_WORDS, read_dates
from persona_pipeline.core.domain import did_you_mean
from persona_pipeline.core.orders import STATUS_WORDS, OrderStatus
from persona_pipeline.core.traits import (
    BOOLEAN_WORDS,
    ContactIds,
    Trait,
    TraitKind,
    TraitsFile,
    UnknownLevels,
    normal_level,
)
from persona_pipeline.loading.reading import THOUSANDS

REJECT_COLUMNS = ["file", "line", "contact_id", "column", "value", "reason"]
EXTERNAL_ID_LENGTH = 200


def joined(rejects: list[pd.DataFrame]) -> pd.DataFrame:
    """Reject frames as one (empty ones left out: concat would warn about their all-NA columns)."""
    present = [r for r in rejects if not r.empty]
    return pd.concat(present, ignore_index=True) if present else pd.DataFrame(columns=REJECT_COLUMNS)


def numbers(values: pd.Series, decimal: str) -> pd.Series:
    """(n,) float64 of a column of numbers written as text; NaN where blank or not a number."""
    if pd.api.types.is_numeric_dtype(values):
        return values.astype("float64")
    text = values.astype(str).str.strip()
    other = "." if decimal == "," else ","
    if pc.any(pc.match_substring(pa.array(text, type=pa.string()), other)).as_py():
        # the other mark is read only as thousands groups ('1.234,5' in a decimal-comma file); anywhere else
        # ('1.5' there) it could mean either, so the value is not a number rather than a guess
        grouped = text.str.match(THOUSANDS[decimal])
        text = text.where(~text.str.contains(other, regex=False) | grouped, "not a number")
        text = text.str.replace(other, "", regex=False)
    if decimal == ",":
        text = text.str.replace(",", ".", regex=False)
    text = text.where(text != "", None)
    try:  # Arrow's parser: 20x faster than pandas' for a clean column; any bad value sends the column below
        return pd.Series(pc.cast(pa.array(text, type=pa.string()), pa.float64()).to_numpy(zero_copy_only=False),
                         index=values.index)  # fmt: skip
    except pa.ArrowInvalid:
        return pd.to_numeric(text, errors="coerce")


INT64_MAX = 2**63 - 1
FLOAT_EXACT = 2**53  # a float column's whole numbers are exact only below this
WHOLE = re.compile(r"^\+?0*(\d+)(?:\.0*)?$")
PLAIN_ID = r"^\d{1,18}$"  # below 10^18: always within 64 bits, no sign, no decimal part


def whole_ids(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Positive whole numbers that fit a 64-bit integer, parsed exactly (never through a float), and a mask of
    the values that are not: beyond 2^63-1 they are refused, never wrapped or rounded.

    values: (n,) text or numbers. Returns (n,) int64 (0 where refused) and (n,) bool refused.
    """
    if pd.api.types.is_float_dtype(values):
        floats = values.to_numpy(dtype="float64", na_value=np.nan)
        with np.errstate(invalid="ignore"):
            exact = np.isfinite(floats) & (np.abs(floats) < FLOAT_EXACT)
        text = pd.Series(np.where(exact, values.astype(str), ""), index=values.index)
    else:
        text = values.astype(str).str.strip()
    arrow = pa.array(text, type=pa.string())
    if pc.all(pc.match_substring_regex(arrow, PLAIN_ID)).as_py():  # the usual file: short plain digits
        ints = pc.cast(arrow, pa.int64()).to_numpy(zero_copy_only=False)
        return pd.Series(ints, index=values.index), ints <= 0
    digits = text.str.extract(WHOLE, expand=False)
    length = digits.str.len().fillna(0).to_numpy()
    fits = (length > 0) & (
        (length < 19) | ((length == 19) & (digits.fillna("") <= str(INT64_MAX)).to_numpy())
    )
    ints = np.zeros(len(values), dtype=np.int64)
    if fits.any():
        ints[fits] = digits[fits].to_numpy(dtype=str).astype(np.int64)  # numpy parses the text exactly
    return pd.Series(ints, index=values.index), ~fits | (ints <= 0)


class _Rejects:
    """Rejected cells of one file, by line; a row with any rejected cell is left out whole."""

    def __init__(self, file: str, frame: pd.DataFrame, key: str | None = "contact_id") -> None:
        self.file = file
        self.ids = frame[key].astype(str).to_numpy() if key and key in frame else None
        self.lines = frame["line"].to_numpy() if "line" in frame else np.arange(len(frame)) + 2
        self.parts: list[pd.DataFrame] = []
        self.bad = np.zeros(len(frame), dtype=bool)

    def add(self, mask: np.ndarray, column: str, values: pd.Series, reason: str) -> None:
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return
        rows = np.flatnonzero(mask)
        self.bad |= mask
        self.parts.append(
            pd.DataFrame(
                {
                    "file": self.file,
                    "line": self.lines[rows],  # 1-based, after the header line
                    "contact_id": self.ids[rows] if self.ids is not None else None,
                    "column": column,
                    "value": values.astype(str).to_numpy()[rows],
                    "reason": reason,
                }
            )
        )

    def frame(self) -> pd.DataFrame:
        return joined(self.parts)


def blank(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    """The values as stripped text, and (n,) bool: blank (empty, NaN, 'null', 'n/a' ...)."""
    text = raw.astype(str).str.strip() if not pd.api.types.is_numeric_dtype(raw) else raw.astype(str)
    return text, raw.isna() | (text == "") | text.str.lower().isin(BLANK_WORDS)


@dataclass
class Outcome:
    """What typing one file gave: the rows taken (chunk by chunk, by the caller), rejects, and counts."""

    rejects: list[pd.DataFrame] = field(default_factory=list)
    unknown_as_missing: dict[str, tuple[int, list[str]]] = field(
        default_factory=dict
    )  # trait -> count, examples

    def count_unknown(self, trait: str, values: pd.Series) -> None:
        count, examples = self.unknown_as_missing.get(trait, (0, []))
        examples = examples + [v for v in values.unique()[:3] if v not in examples][: 3 - len(examples)]
        self.unknown_as_missing[trait] = (count + len(values), examples)

    def notes(self) -> list[str]:
        return [
            f"{trait}: {count:,} values outside its levels loaded as missing (e.g. {', '.join(map(repr, examples))})"
            for trait, (count, examples) in self.unknown_as_missing.items()
        ]


def _levels(trait: Trait, text: pd.Series, missing: pd.Series, raw: pd.Series, rejects: _Rejects,
            outcome: Outcome) -> pd.Series:  # fmt: skip
    """A categorical or ordinal column: declared levels (matched loosely with `normalize`), unknown ones
    rejected or made missing as the trait says."""
    if trait.normalize:
        canonical = {normal_level(level): level for level in trait.levels}
        values = text.map(lambda v: canonical.get(normal_level(v)))
    else:
        values = text.where(text.isin(trait.levels))
    # a declared level is that level even where it is a word loads read as blank ('none', 'na'): the traits
    # file said so for this trait
    missing = missing & (values.isna() | raw.isna())
    unknown = values.isna() & ~missing
    if trait.unknown is UnknownLevels.MISSING:
        if unknown.any():
            outcome.count_unknown(trait.name, text[unknown])
    elif unknown.any():
        distinct = pd.unique(text[unknown])[:NAMED_UNKNOWN_LEVELS]
        for value in distinct:  # each unknown value with the fix that fits it
            rejects.add((unknown & (text == value)).to_numpy(), trait.name, raw, _level_problem(trait, value))
        rest = unknown & ~text.isin(distinct)
        if rest.any():
            rejects.add(rest.to_numpy(), trait.name, raw, _level_problem(trait, None))
    return values.where(~missing & ~unknown, None).astype(object)


NAMED_UNKNOWN_LEVELS = 50  # distinct unknown values given their own hint; the rest share a general one


def _level_problem(trait: Trait, value: str | None) -> str:
    """Why a value is no level of the trait, and the fix that would help: `normalize` only when case or
    spaces are the difference, else the level it is closest to (a typo in the file or in the traits file)."""
    levels = f"not a declared level ({', '.join(trait.levels)})"
    missing = "or `unknown: missing` to load it as missing"
    if value is None:
        return f"{levels}: fix the value or the traits file's levels, {missing}"
    loose = normal_level(value)
    if not trait.normalize and loose in {normal_level(level) for level in trait.levels}:
        return f"{levels}; add `normalize: true` to match ignoring case and spaces, {missing}"
    word = re.compile(rf"(?<!\w){re.escape(loose)}(?!\w)") if loose else None
    holding = [level for level in trait.levels if word is not None and word.search(normal_level(level))]
    near = f" (did you mean {holding[0]!r}?)" if len(holding) == 1 else did_you_mean(value, trait.levels)
    return f"{levels}{near}: fix the value or the traits file's levels, {missing}"


def key_hashes(keys: pd.Series) -> np.ndarray:
    """(n,) uint64 of text keys: whole-file duplicate checks in 8 bytes a key, however long the keys are."""
    return pd.util.hash_array(keys.astype(str).str.strip().to_numpy(dtype=object))


def _repeated(values: np.ndarray) -> np.ndarray:
    """The values that occur more than once; values: (n,) numbers."""
    unique, counts = np.unique(values, return_counts=True)
    return unique[counts > 1]


@dataclass
class Survey:
    """Whole-file facts read before any row is typed: the row count, the keys that repeat (every occurrence is
    rejected) and the format each date column is read in (one for the whole column, or the file is refused)."""

    rows: int = 0
    repeated_keys: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.int64))
    formats: dict[str, str | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


RECORD_DATES = ("created_at", "updated_at", "ordered_at")  # dates of the records themselves, not traits


def survey(  # noqa: ANN001 - chunks: an iterator of frames
    chunks,
    key: str | None,
    text_keys: bool,
    dates: dict[str, str | None],
    headers: dict[str, str] | None = None,
) -> Survey:
    """Read the key and date columns of every chunk: counts, repeated keys and each date column's format.

    dates: column -> a format given by the user (kept), or None (inferred from the column's distinct values);
    headers: column -> the file's header for it, the name an error gives.
    """
    found = Survey()
    keys: list[np.ndarray] = []
    distinct: dict[str, list[np.ndarray]] = {column: [] for column, given in dates.items() if not given}
    for chunk in chunks:
        found.rows += len(chunk)
        if key is not None and key in chunk:
            if text_keys:
                text, missing = blank(chunk[key])
                keys.append(key_hashes(text[~missing]))
            else:
                ids, bad = whole_ids(chunk[key])
                keys.append(ids.to_numpy()[~bad])
        for column, values in distinct.items():
            if column in chunk:
                values.append(pd.unique(chunk[column]))
    if keys:
        found.repeated_keys = _repeated(np.concatenate(keys))
    found.formats = {column: given for column, given in dates.items() if given}
    found.notes += [
        f"dates in {column!r} read as {given} (as given)" for column, given in found.formats.items()
    ]
    for column, parts in distinct.items():
        if not parts:
            continue
        values = pd.Series(pd.unique(np.concatenate(parts)) if len(parts) > 1 else parts[0])
        header = (headers or {}).get(column, column)
        # refuses a column read two ways: nothing is written yet
        reading = read_dates(values, header, trait=None if column in RECORD_DATES else column)
        found.formats[column] = reading.format
        if reading.format:
            found.notes.append(f"dates in {column!r} read as {reading.format}")
    return found


def _dates(raw: pd.Series, column: str, fmt: str | None, rejects: _Rejects) -> pd.Series:
    reading = read_dates(raw, column, fmt)
    how = f"in the format {reading.format}" if reading.format else "readable as a date"
    rejects.add(reading.unread, column, raw, f"not a date {how}; pass --date-format if the column is misread")
    return reading.values


def parse_contacts(
    frame: pd.DataFrame, traits_file: TraitsFile, file: str, decimal: str, found: Survey, outcome: Outcome
) -> pd.DataFrame:
    """One chunk's typed contacts (line, contact_id or external_id, created_at, updated_at, traits); its
    rejected cells go to `outcome`."""
    catalog, ids_kind = traits_file.catalog, traits_file.contacts.ids
    rejects = _Rejects(file, frame)
    out = pd.DataFrame({"line": frame["line"].to_numpy()}, index=frame.index)
    if ids_kind is ContactIds.INTEGER:
        ids, bad_id = whole_ids(frame["contact_id"])
        rejects.add(bad_id, "contact_id", frame["contact_id"],
                    f"contact_id must be a positive whole number up to {INT64_MAX} (64 bits); to keep ids such as "
                    "'C001' as text, add `contacts: {ids: text}` to the traits file")  # fmt: skip
        repeated = np.isin(ids.to_numpy(), found.repeated_keys) & ~bad_id
        out["contact_id"] = ids
    elif ids_kind is ContactIds.TEXT:
        text, missing = blank(frame["contact_id"])
        too_long = text.str.len() > EXTERNAL_ID_LENGTH
        rejects.add(missing.to_numpy(), "contact_id", frame["contact_id"], "missing id")
        rejects.add(too_long.to_numpy(), "contact_id", frame["contact_id"],
                    f"an id longer than {EXTERNAL_ID_LENGTH} characters")  # fmt: skip
        repeated = np.isin(key_hashes(text), found.repeated_keys) & ~missing.to_numpy()
        out["external_id"] = text.astype(object)
    else:
        repeated = np.zeros(len(frame), dtype=bool)
    rejects.add(repeated, "contact_id", frame.get("contact_id", frame["line"]),
                "duplicate contact id: every occurrence rejected")  # fmt: skip
    for column in ("created_at", "updated_at"):
        if column in frame:
            out[column] = _dates(frame[column], column, found.formats.get(column), rejects)
    for trait in catalog.traits:
        raw = frame[trait.name]
        text, missing = blank(raw)
        if trait.kind is TraitKind.NUMERIC:
            values = numbers(raw, decimal)
            rejects.add((values.isna() & ~missing).to_numpy(), trait.name, raw, "not a number")
            infinite = np.isinf(values.to_numpy(dtype="float64", na_value=np.nan))
            rejects.add(infinite, trait.name, raw, "not a finite number")
            if trait.minimum is not None:
                rejects.add((values < trait.minimum).to_numpy(), trait.name, raw,
                            f"below the declared minimum {trait.minimum:g}")  # fmt: skip
            if trait.maximum is not None:
                rejects.add((values > trait.maximum).to_numpy(), trait.name, raw,
                            f"above the declared maximum {trait.maximum:g}")  # fmt: skip
            out[trait.name] = values.where(~infinite)
        elif trait.kind is TraitKind.BOOLEAN:
            lower = text.str.lower()
            values = pd.Series(pd.NA, index=frame.index, dtype="boolean")
            values[lower.isin([w for w, v in BOOLEAN_WORDS.items() if v])] = True
            values[lower.isin([w for w, v in BOOLEAN_WORDS.items() if not v])] = False
            rejects.add((values.isna() & ~missing).to_numpy(), trait.name, raw,
                        "not a boolean (use true/false, yes/no, 1/0)")  # fmt: skip
            out[trait.name] = values
        elif trait.kind is TraitKind.DATE:
            out[trait.name] = _dates(raw, trait.name, found.formats.get(trait.name), rejects)
        else:
            out[trait.name] = _levels(trait, text, missing, raw, rejects, outcome)
    outcome.rejects.append(rejects.frame())
    return out[~rejects.bad].reset_index(drop=True)


class OrderIdMaker:
    """Order ids made from each row's content and its occurrence among identical rows, counted across the
    file's chunks: the same file loaded twice gives the same ids, so nothing is doubled."""

    def __init__(self) -> None:
        self.seen = pd.Series(dtype="int64")  # content hash -> rows with that content so far

    def __call__(self, frame: pd.DataFrame) -> pd.Series:
        """(n,) int64, positive, for one chunk's rows (the file's columns as read)."""
        content = pd.util.hash_pandas_object(frame.astype(str), index=False).to_numpy(dtype="uint64")
        hashes = pd.Series(content)
        occurrence = hashes.groupby(hashes, sort=False).cumcount().to_numpy()
        occurrence = occurrence + hashes.map(self.seen).fillna(0).to_numpy(dtype="int64")
        self.seen = self.seen.add(hashes.value_counts(), fill_value=0).astype("int64")
        mixed = pd.util.hash_pandas_object(pd.DataFrame({"h": content, "n": occurrence}), index=False)
        ids = (mixed.to_numpy(dtype="uint64") & np.uint64(INT64_MAX)).astype("int64")
        return pd.Series(np.where(ids == 0, 1, ids), index=frame.index)


def parse_orders(
    frame: pd.DataFrame,
    traits_file: TraitsFile,
    file: str,
    decimal: str,
    found: Survey,
    outcome: Outcome,
    make_ids: OrderIdMaker | None,
) -> pd.DataFrame:
    """One chunk's typed orders (line, order_id, key, ordered_at, amount, product_category, status,
    refunded); `key` is the file's contact id, matched to stored contacts in the warehouse."""
    rejects = _Rejects(file, frame)
    if make_ids is not None:
        order_ids = make_ids(frame.drop(columns=["line", "order_id"], errors="ignore"))
    else:
        order_ids, bad_order = whole_ids(frame["order_id"])
        rejects.add(bad_order, "order_id", frame["order_id"],
                    f"order_id must be a positive whole number up to {INT64_MAX}; for a file without usable order "
                    "ids, add `orders: {order_ids: generated}` to the traits file")  # fmt: skip
        rejects.add(np.isin(order_ids.to_numpy(), found.repeated_keys) & ~bad_order, "order_id", frame["order_id"],
                    "duplicate order_id in this file: every occurrence rejected")  # fmt: skip
    if traits_file.contacts.ids is ContactIds.TEXT:
        keys, missing = blank(frame["contact_id"])
        rejects.add(missing.to_numpy(), "contact_id", frame["contact_id"], "missing contact id")
        key = keys.astype(object)
    else:
        key, bad_contact = whole_ids(frame["contact_id"])
        rejects.add(
            bad_contact, "contact_id", frame["contact_id"], "not a contact id (a positive whole number)"
        )
    when = _dates(frame["ordered_at"], "ordered_at", found.formats.get("ordered_at"), rejects)
    rejects.add(when.isna().to_numpy() & ~rejects.bad, "ordered_at", frame["ordered_at"], "missing date")
    status = pd.Series(OrderStatus.COMPLETED, index=frame.index, dtype=object)
    if "status" in frame:
        status_text, status_missing = blank(frame["status"])
        status = status_text.str.lower().where(~status_missing, "").map(STATUS_WORDS.get)  # blank: completed
        rejects.add(status.isna().to_numpy(), "status", frame["status"],
                    "unknown status; use completed, cancelled or returned")  # fmt: skip
    cancelled = (status == OrderStatus.CANCELLED).to_numpy()
    amount = numbers(frame["amount"], decimal)
    _, amount_missing = blank(frame["amount"])
    rejects.add((amount_missing & ~cancelled).to_numpy(), "amount", frame["amount"],
                "missing amount (only a cancelled order may have none)")  # fmt: skip
    rejects.add((amount.isna() & ~amount_missing).to_numpy(), "amount", frame["amount"], "not a number")
    rejects.add((amount < 0).to_numpy(), "amount", frame["amount"], "negative amount")
    refunded = pd.Series(0.0, index=frame.index)
    if "refunded" in frame:
        refunded = numbers(frame["refunded"], decimal)
        rejects.add((refunded < 0).to_numpy(), "refunded", frame["refunded"], "a negative refund")
        rejects.add(
            (refunded > amount).to_numpy(), "refunded", frame["refunded"], "refunded more than the amount"
        )
    category = pd.Series(None, index=frame.index, dtype=object)
    if "product_category" in frame:
        category_text, category_missing = blank(frame["product_category"])
        category = category_text.where(~category_missing, None).astype(object)
    out = pd.DataFrame(
        {
            "line": frame["line"].to_numpy(),
            "order_id": order_ids.to_numpy(),
            "key": key.to_numpy(),
            "ordered_at": when.to_numpy(),
            "amount": amount.to_numpy(),
            "product_category": category.to_numpy(),
            "status": status.astype(object).to_numpy(),
            "refunded": refunded.fillna(0).to_numpy(),
        }
    )
    outcome.rejects.append(rejects.frame())
    return out[~rejects.bad].reset_index(drop=True)
