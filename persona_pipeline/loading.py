"""Bring your own data: contacts (and orders) from CSV or Parquet, typed by a trait catalog.

Every row that cannot be taken is reported with its line, column and reason, and the rest is loaded. The load
replaces the warehouse's sources in one transaction: a load that fails leaves the stored data as it was.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from persona_pipeline import files
from persona_pipeline.config import persona_home
from persona_pipeline.core.traits import BOOLEAN_WORDS, TraitCatalog, TraitKind
from persona_pipeline.errors import LoadError
from persona_pipeline.warehouse.sources import replace_sources

COMMA_DECIMAL = re.compile(r"^-?\d{1,3}(\.\d{3})*,\d+$|^-?\d+,\d+$")
ORDER_COLUMNS = ("order_id", "contact_id", "ordered_at", "amount", "product_category")
REJECT_COLUMNS = ["file", "line", "contact_id", "column", "value", "reason"]


@dataclass
class LoadReport:
    contacts: int
    orders: int
    rejects: pd.DataFrame
    rejects_path: Path | None
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [*self.notes, f"loaded {self.contacts:,} contacts and {self.orders:,} orders"]
        if not self.rejects.empty:
            rows = self.rejects.groupby(["file", "line"]).ngroups
            out.append(
                f"rejected {rows:,} rows ({len(self.rejects):,} problems); all of them are in {self.rejects_path}"
            )
            for r in self.rejects.head(20).itertuples(index=False):
                out.append(f"  {r.file} line {r.line}, column {r.column!r}: {r.reason} (value {r.value!r})")
            if len(self.rejects) > 20:
                out.append(f"  ... and {len(self.rejects) - 20:,} more")
        return out


def _read_table(path: Path, delimiter: str | None, encoding: str) -> tuple[pd.DataFrame, str | None]:
    """All columns as text (Parquet keeps its types); the delimiter is sniffed when not given."""
    if not path.exists():
        raise LoadError(f"{path}: no such file")
    if not path.is_file():
        raise LoadError(f"{path}: not a file; give the path of a CSV, TSV or Parquet file")
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            return pd.read_parquet(path), None
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise LoadError(f"{path}: not a readable Parquet file: {exc}") from exc
    raw = path.read_bytes()
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise LoadError(
            f"{path}: line {line} is not valid {encoding} (byte {exc.start}: {raw[exc.start : exc.start + 1]!r}); "
            "pass --encoding with the file's encoding, for example --encoding latin-1"
        ) from exc
    except LookupError as exc:
        raise LoadError(
            f"unknown encoding {encoding!r}; use a Python codec name such as utf-8 or latin-1"
        ) from exc
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise LoadError(f"{path}: the file is empty")
    if delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff(text[:65536], delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    try:
        frame = pd.read_csv(
            io.StringIO(text), sep=delimiter, dtype=str, keep_default_na=False, skipinitialspace=True
        )
    except (pd.errors.ParserError, ValueError) as exc:
        raise LoadError(
            f"{path}: cannot parse as delimited text with delimiter {delimiter!r}: {exc}"
        ) from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame, delimiter


def _require_columns(path: Path, frame: pd.DataFrame, needed: list[str], delimiter: str | None) -> None:
    missing = [c for c in needed if c not in frame.columns]
    if not missing:
        return
    hint = ""
    if len(frame.columns) == 1:
        header = frame.columns[0]
        seen = [d for d in (",", ";", "\t", "|") if d in header and d != delimiter]
        if seen:
            hint = f" The header looks delimited by {seen[0]!r}: pass --delimiter {seen[0]!r}."
    raise LoadError(
        f"{path}: missing column(s) {', '.join(missing)}; the file has {', '.join(map(str, frame.columns))} "
        f"(read with delimiter {delimiter!r}).{hint}"
    )


def _detect_decimal(frame: pd.DataFrame, columns: list[str], fallback: str = ".") -> str:
    """',' when most numbers that carry a mark are written with a decimal comma; whole numbers carry none, so
    a column of them keeps `fallback` (the other file's mark, for orders)."""
    sample = (
        pd.concat([frame[c].astype(str).head(2000) for c in columns if c in frame])
        if columns
        else pd.Series([])
    )
    sample = sample.str.strip()
    marked = sample[sample.str.contains(r"[.,]", regex=True)]
    if not len(marked):
        return fallback
    return "," if marked.str.match(COMMA_DECIMAL).mean() > 0.5 else "."


def _numbers(values: pd.Series, decimal: str) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values):
        return values.astype("float64")
    text = values.astype(str).str.strip()
    if decimal == ",":
        text = text.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
    return pd.to_numeric(text.where(text != "", None), errors="coerce")


INT64_MAX = 2**63 - 1
FLOAT_EXACT = 2**53  # a float column's whole numbers are exact only below this
WHOLE = re.compile(r"^\+?0*(\d+)(?:\.0*)?$")


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
    digits = text.str.extract(WHOLE, expand=False)
    length = digits.str.len().fillna(0).to_numpy()
    fits = (length > 0) & (
        (length < 19) | ((length == 19) & (digits.fillna("") <= str(INT64_MAX)).to_numpy())
    )
    ints = np.zeros(len(values), dtype=np.int64)
    if fits.any():
        ints[fits] = digits[fits].to_numpy(dtype=str).astype(np.int64)  # numpy parses the text exactly
    return pd.Series(ints, index=values.index), ~fits | (ints <= 0)


def _dates(values: pd.Series, date_format: str | None) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        return values
    text = values.astype(str).str.strip()
    text = text.where(text != "", None)
    if date_format:
        return pd.to_datetime(text, format=date_format, errors="coerce")
    return pd.to_datetime(text, errors="coerce", format="mixed")


class _Rejects:
    def __init__(self, file: str, frame: pd.DataFrame) -> None:
        self.file = file
        self.ids = frame["contact_id"].astype(str).to_numpy() if "contact_id" in frame else None
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
                    "line": rows + 2,  # 1-based, after the header line
                    "contact_id": self.ids[rows] if self.ids is not None else None,
                    "column": column,
                    "value": values.astype(str).to_numpy()[rows],
                    "reason": reason,
                }
            )
        )

    def frame(self) -> pd.DataFrame:
        return (
            pd.concat(self.parts, ignore_index=True) if self.parts else pd.DataFrame(columns=REJECT_COLUMNS)
        )


def parse_contacts(
    frame: pd.DataFrame, catalog: TraitCatalog, file: str, decimal: str, date_format: str | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Typed contacts and the rejected cells; a row with any rejected cell is left out whole."""
    rejects = _Rejects(file, frame)
    out = pd.DataFrame(index=frame.index)
    ids, bad_id = whole_ids(frame["contact_id"])
    rejects.add(
        bad_id,
        "contact_id",
        frame["contact_id"],
        f"contact_id must be a positive whole number up to {INT64_MAX} (64 bits)",
    )
    duplicated = ids.duplicated(keep=False) & ~bad_id
    rejects.add(
        duplicated.to_numpy(),
        "contact_id",
        frame["contact_id"],
        "duplicate contact_id: every occurrence rejected",
    )
    out["contact_id"] = ids
    for column in ("created_at", "updated_at"):
        if column in frame:
            parsed = _dates(frame[column], date_format)
            given = frame[column].astype(str).str.strip() != ""
            rejects.add((parsed.isna() & given).to_numpy(), column, frame[column], "not a date" + (
                f" in the format {date_format}" if date_format else "; pass --date-format"))  # fmt: skip
            out[column] = parsed
    for trait in catalog.traits:
        raw = frame[trait.name]
        text = raw.astype(str).str.strip() if not pd.api.types.is_numeric_dtype(raw) else raw.astype(str)
        blank = raw.isna() | (text == "") | text.str.lower().isin(["nan", "null", "none", "na", "<na>"])
        if trait.kind is TraitKind.NUMERIC:
            values = _numbers(raw, decimal)
            not_number = values.isna() & ~blank
            rejects.add(not_number.to_numpy(), trait.name, raw, "not a number")
            infinite = np.isinf(values.to_numpy(dtype="float64", na_value=np.nan))
            rejects.add(infinite, trait.name, raw, "not a finite number")
            if trait.minimum is not None:
                rejects.add(
                    (values < trait.minimum).to_numpy(),
                    trait.name,
                    raw,
                    f"below the declared minimum {trait.minimum:g}",
                )
            if trait.maximum is not None:
                rejects.add(
                    (values > trait.maximum).to_numpy(),
                    trait.name,
                    raw,
                    f"above the declared maximum {trait.maximum:g}",
                )
            out[trait.name] = values.where(~np.isinf(values.to_numpy(dtype="float64", na_value=np.nan)))
        elif trait.kind is TraitKind.BOOLEAN:
            lower = text.str.lower()
            values = pd.Series(pd.NA, index=frame.index, dtype="boolean")
            values[lower.isin([w for w, v in BOOLEAN_WORDS.items() if v])] = True
            values[lower.isin([w for w, v in BOOLEAN_WORDS.items() if not v])] = False
            rejects.add(
                (values.isna() & ~blank).to_numpy(),
                trait.name,
                raw,
                "not a boolean (use true/false, yes/no, 1/0)",
            )
            out[trait.name] = values
        else:
            unknown = ~text.isin(trait.levels) & ~blank
            rejects.add(
                unknown.to_numpy(), trait.name, raw, f"not a declared level ({', '.join(trait.levels)})"
            )
            out[trait.name] = text.where(~blank, None).astype(object)
    good = out[~rejects.bad].reset_index(drop=True)
    now = pd.Timestamp(dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0))
    for column in ("created_at", "updated_at"):
        if column not in good:
            good[column] = now
        good[column] = good[column].fillna(now)
    return good, rejects.frame()


def parse_orders(
    frame: pd.DataFrame, contact_ids: set[int], file: str, decimal: str, date_format: str | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    rejects = _Rejects(file, frame)
    order_ids, bad_order = whole_ids(frame["order_id"])
    rejects.add(bad_order | (order_ids.duplicated(keep=False).to_numpy() & ~bad_order), "order_id",
                frame["order_id"], f"order_id must be a unique positive whole number up to {INT64_MAX}")  # fmt: skip
    ids, bad_contact = whole_ids(frame["contact_id"])
    known = ids.isin(list(contact_ids)) & ~bad_contact
    rejects.add(
        (~known).to_numpy(), "contact_id", frame["contact_id"], "no loaded contact has this contact_id"
    )
    when = _dates(frame["ordered_at"], date_format)
    rejects.add(when.isna().to_numpy(), "ordered_at", frame["ordered_at"], "not a date; pass --date-format")
    amount = _numbers(frame["amount"], decimal)
    rejects.add(
        (amount.isna() | (amount < 0)).to_numpy(), "amount", frame["amount"], "missing or negative amount"
    )
    out = pd.DataFrame(
        {
            "order_id": order_ids,
            "contact_id": ids,
            "ordered_at": when,
            "amount": amount,
            "product_category": frame["product_category"].astype(str).str.strip().replace("", None),
        }
    )
    return out[~rejects.bad].reset_index(drop=True), rejects.frame()


def load_files(
    engine: Engine,
    contacts_path: str | Path,
    traits_path: str | Path,
    orders_path: str | Path | None = None,
    delimiter: str | None = None,
    decimal: str | None = None,
    date_format: str | None = None,
    encoding: str = "utf-8",
    rejects_path: str | Path | None = None,
) -> LoadReport:
    catalog = TraitCatalog.from_yaml(traits_path)
    contacts_path = Path(contacts_path)
    raw, used_delimiter = _read_table(contacts_path, delimiter, encoding)
    _require_columns(contacts_path, raw, ["contact_id", *catalog.names], used_delimiter)
    numeric = [t.name for t in catalog.traits if t.kind is TraitKind.NUMERIC]
    given_decimal = decimal
    decimal = decimal or _detect_decimal(raw, numeric)
    notes = [
        f"read {contacts_path.name}: {len(raw):,} rows, delimiter {used_delimiter!r}, decimal mark {decimal!r}"
    ]
    contacts, rejects = parse_contacts(raw, catalog, contacts_path.name, decimal, date_format)
    if contacts.empty:
        if rejects.empty:
            raise LoadError(
                f"{contacts_path}: the file has a header but no rows of data; nothing was changed"
            )
        first = "; ".join(f"line {r.line} {r.column}: {r.reason}" for r in rejects.head(3).itertuples())
        raise LoadError(f"{contacts_path}: no row could be loaded ({first}); nothing was changed")
    orders = pd.DataFrame(columns=list(ORDER_COLUMNS))
    all_rejects = [rejects]
    if orders_path:
        orders_path = Path(orders_path)
        raw_orders, orders_delimiter = _read_table(orders_path, delimiter, encoding)
        _require_columns(orders_path, raw_orders, list(ORDER_COLUMNS), orders_delimiter)
        order_decimal = given_decimal or _detect_decimal(
            raw_orders, ["amount"], decimal
        )  # each file its own mark
        orders, order_rejects = parse_orders(
            raw_orders, set(contacts["contact_id"].tolist()), orders_path.name, order_decimal, date_format
        )
        all_rejects.append(order_rejects)
    rejected = pd.concat([r for r in all_rejects if not r.empty], ignore_index=True) if any(
        not r.empty for r in all_rejects) else pd.DataFrame(columns=REJECT_COLUMNS)  # fmt: skip
    path = None
    if not rejected.empty:  # written first: should it fail, the warehouse is left as it was
        path = (
            Path(rejects_path)
            if rejects_path
            else persona_home() / f"load_rejects_{dt.datetime.now():%Y%m%d_%H%M%S}.csv"
        )
        files.write_text(path, rejected.to_csv(index=False))
    history = contacts.rename(columns={"created_at": "valid_from"}).assign(valid_to=pd.NaT)
    replace_sources(engine, catalog, contacts, history, orders)
    return LoadReport(len(contacts), len(orders), rejected, path, notes)
