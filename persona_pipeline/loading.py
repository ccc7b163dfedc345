"""Bring your own data: contacts (and orders) from CSV or Parquet, typed and mapped by a traits file.

A load merges by default: contacts in the file are inserted or updated (a change opens a new trait-history
version), contacts not in it stay; replacing the whole base (`replace`) and removing contacts
(`delete_missing`, a file of ids) are explicit. Every row that cannot be taken is reported with its line, column
and reason and written to a rejects file; above `max_reject_share` of a file's rows rejected, nothing is
written. One transaction either way: a load that fails, or a dry run, leaves the warehouse as it was.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection, Engine

from persona_pipeline import files
from persona_pipeline.config import persona_home
from persona_pipeline.core.dates import BLANK_WORDS, read_dates
from persona_pipeline.core.orders import STATUS_WORDS, OrderStatus
from persona_pipeline.core.traits import (
    BOOLEAN_WORDS,
    ORDER_OPTIONAL,
    ContactIds,
    OrderIds,
    Trait,
    TraitCatalog,
    TraitKind,
    TraitsFile,
    UnknownLevels,
    normal_level,
    read_traits_file,
)
from persona_pipeline.errors import LoadError
from persona_pipeline.warehouse import sources
from persona_pipeline.warehouse.tables import ensure_catalog_tables

COMMA_DECIMAL = re.compile(r"^-?\d{1,3}(\.\d{3})*,\d+$|^-?\d+,\d+$")
REJECT_COLUMNS = ["file", "line", "contact_id", "column", "value", "reason"]
DEFAULT_MAX_REJECT_SHARE = 0.05
STALE = "older than the stored contact's updated_at"
EXTERNAL_ID_LENGTH = 200


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
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", pd.errors.ParserWarning)
            frame = pd.read_csv(
                io.StringIO(text),
                sep=delimiter,
                dtype=str,
                keep_default_na=False,
                skipinitialspace=True,
                index_col=False,  # a row with an extra field must not shift every column by one
            )
        if any(issubclass(w.category, pd.errors.ParserWarning) for w in caught):
            raise LoadError(f"{path}: {_longer_row(text, delimiter)}; nothing was changed")
    except (pd.errors.ParserError, ValueError) as exc:
        raise LoadError(
            f"{path}: cannot parse as delimited text with delimiter {delimiter!r}: {exc}"
        ) from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame, delimiter


def _longer_row(text: str, delimiter: str) -> str:
    """Which line has more fields than the header, said plainly."""
    rows = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = len(next(rows, []))
    for number, row in enumerate(rows, start=2):
        if len(row) > header:
            return (
                f"line {number} has {len(row)} fields but the header has {header} (delimiter {delimiter!r}); "
                "quote values that contain the delimiter, or pass the right --delimiter"
            )
    return f"a row has more fields than the header's {header}"


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
        return _joined(self.parts)


def _loose(header: str) -> str:
    """A header as a person reads it: case, spaces, '_' and '-' do not matter."""
    return re.sub(r"[\s_\-]+", "", str(header)).casefold()


def _map_columns(
    path: Path, frame: pd.DataFrame, wanted: dict[str, tuple[str, str]], delimiter: str | None
) -> pd.DataFrame:
    """Rename the file's headers to the names we read; wanted: name -> (header, the traits-file line to add
    with {header} for the file's spelling). Missing headers are one error listing every fix."""
    problems = []
    renames = {}
    for name, (header, fix) in wanted.items():
        if header in frame.columns:
            renames[header] = name
            continue
        near = [c for c in frame.columns if _loose(c) == _loose(header)]
        problems.append(
            f"{header!r} (the file has {near[0]!r}: {fix.format(header=near[0])})" if near else repr(header)
        )
    if problems:
        if len(frame.columns) == 1:
            seen = [d for d in (",", ";", "\t", "|") if d in str(frame.columns[0]) and d != delimiter]
            if seen:
                raise LoadError(
                    f"{path}: missing column(s) {', '.join(problems)}: the header looks delimited by {seen[0]!r}, "
                    f"not {delimiter!r}: pass --delimiter {seen[0]!r}"
                )
        raise LoadError(
            f"{path}: missing column(s) {'; '.join(problems)}. The file has {', '.join(map(str, frame.columns))} "
            f"(read with delimiter {delimiter!r}); a trait reads another header with `column:` in the traits file"
        )
    return frame.rename(columns=renames)


def _blank(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    """The values as stripped text, and (n,) bool: blank (empty, NaN, 'null', 'n/a' ...)."""
    text = raw.astype(str).str.strip() if not pd.api.types.is_numeric_dtype(raw) else raw.astype(str)
    return text, raw.isna() | (text == "") | text.str.lower().isin(BLANK_WORDS)


def _read_dates(
    raw: pd.Series, column: str, fmt: str | None, rejects: _Rejects, notes: list[str]
) -> pd.Series:
    reading = read_dates(raw, column, fmt)
    how = f"in the format {reading.format}" if reading.format else "readable as a date"
    rejects.add(reading.unread, column, raw, f"not a date {how}; pass --date-format if the column is misread")
    if reading.format and not fmt:
        notes.append(f"dates in {column!r} read as {reading.format}")
    return reading.values


def _levels(trait: Trait, text: pd.Series, blank: pd.Series, raw: pd.Series, rejects: _Rejects,
            notes: list[str]) -> pd.Series:  # fmt: skip
    """A categorical or ordinal column: declared levels (matched loosely with `normalize`), unknown ones
    rejected or made missing as the trait says."""
    if trait.normalize:
        canonical = {normal_level(level): level for level in trait.levels}
        values = text.map(lambda v: canonical.get(normal_level(v)))
    else:
        values = text.where(text.isin(trait.levels))
    unknown = values.isna() & ~blank
    if trait.unknown is UnknownLevels.MISSING:
        if unknown.any():
            examples = ", ".join(repr(v) for v in text[unknown].unique()[:3])
            notes.append(
                f"{trait.name}: {int(unknown.sum()):,} values outside its levels loaded as missing (e.g. {examples})"
            )
    else:
        hint = "" if trait.normalize else "; add `normalize: true` to match ignoring case and spaces"
        rejects.add(
            unknown.to_numpy(),
            trait.name,
            raw,
            f"not a declared level ({', '.join(trait.levels)}){hint}, or `unknown: missing` to load it as missing",
        )
    return values.where(~blank & ~unknown, None).astype(object)


def parse_contacts(
    frame: pd.DataFrame,
    traits_file: TraitsFile,
    file: str,
    decimal: str,
    date_format: str | None,
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Typed contacts (line, contact_id or external_id, created_at, updated_at, traits), the rejected cells, and
    notes; a row with any rejected cell is left out whole."""
    catalog, ids_kind = traits_file.catalog, traits_file.contacts.ids
    frame = frame.assign(line=np.arange(len(frame)) + 2)
    rejects = _Rejects(file, frame)
    notes: list[str] = []
    out = pd.DataFrame({"line": frame["line"].to_numpy()}, index=frame.index)
    if ids_kind is ContactIds.INTEGER:
        ids, bad_id = whole_ids(frame["contact_id"])
        rejects.add(bad_id, "contact_id", frame["contact_id"],
                    f"contact_id must be a positive whole number up to {INT64_MAX} (64 bits); to keep ids such as "
                    "'C001' as text, add `contacts: {ids: text}` to the traits file")  # fmt: skip
        duplicated = ids.duplicated(keep=False) & ~bad_id
        out["contact_id"] = ids
    elif ids_kind is ContactIds.TEXT:
        text, blank = _blank(frame["contact_id"])
        too_long = text.str.len() > EXTERNAL_ID_LENGTH
        rejects.add(blank.to_numpy(), "contact_id", frame["contact_id"], "missing id")
        rejects.add(too_long.to_numpy(), "contact_id", frame["contact_id"],
                    f"an id longer than {EXTERNAL_ID_LENGTH} characters")  # fmt: skip
        duplicated = text.duplicated(keep=False) & ~blank
        out["external_id"] = text.astype(object)
    else:
        duplicated = pd.Series(False, index=frame.index)
    rejects.add(duplicated.to_numpy(), "contact_id", frame.get("contact_id", frame["line"]),
                "duplicate contact id: every occurrence rejected")  # fmt: skip
    for column in ("created_at", "updated_at"):
        if column in frame:
            out[column] = _read_dates(frame[column], column, date_format, rejects, notes)
    for trait in catalog.traits:
        raw = frame[trait.name]
        text, blank = _blank(raw)
        if trait.kind is TraitKind.NUMERIC:
            values = _numbers(raw, decimal)
            rejects.add((values.isna() & ~blank).to_numpy(), trait.name, raw, "not a number")
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
            rejects.add((values.isna() & ~blank).to_numpy(), trait.name, raw,
                        "not a boolean (use true/false, yes/no, 1/0)")  # fmt: skip
            out[trait.name] = values
        elif trait.kind is TraitKind.DATE:
            out[trait.name] = _read_dates(raw, trait.name, trait.date_format or date_format, rejects, notes)
        else:
            out[trait.name] = _levels(trait, text, blank, raw, rejects, notes)
    good = out[~rejects.bad].reset_index(drop=True)
    return good, rejects.frame(), notes


def _generated_order_ids(frame: pd.DataFrame) -> pd.Series:
    """Order ids made from each row's content (and its occurrence among identical rows): the same file loaded
    twice gives the same ids, so nothing is doubled. (n,) int64, positive."""
    content = frame.astype(str)
    first = pd.util.hash_pandas_object(content, index=False).to_numpy(dtype="uint64")
    occurrence = content.groupby(list(content.columns), sort=False, dropna=False).cumcount().to_numpy()
    mixed = pd.util.hash_pandas_object(pd.DataFrame({"h": first, "n": occurrence}), index=False)
    ids = (mixed.to_numpy(dtype="uint64") & np.uint64(INT64_MAX)).astype("int64")
    return pd.Series(np.where(ids == 0, 1, ids), index=frame.index)


def parse_orders(
    frame: pd.DataFrame, traits_file: TraitsFile, file: str, decimal: str, date_format: str | None
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Typed orders (line, order_id, contact_key, ordered_at, amount, product_category, status, refunded), the
    rejected cells and notes. contact_key is the file's contact id, matched to stored contacts later."""
    frame = frame.assign(line=np.arange(len(frame)) + 2)
    rejects = _Rejects(file, frame)
    notes: list[str] = []
    text_ids = traits_file.contacts.ids is ContactIds.TEXT
    if traits_file.orders.order_ids is OrderIds.GENERATED:
        order_ids = _generated_order_ids(frame.drop(columns=["line", "order_id"], errors="ignore"))
        notes.append(f"{file}: order ids generated from each row's content")
    else:
        order_ids, bad_order = whole_ids(frame["order_id"])
        rejects.add(bad_order, "order_id", frame["order_id"],
                    f"order_id must be a positive whole number up to {INT64_MAX}; for a file without usable order "
                    "ids, add `orders: {order_ids: generated}` to the traits file")  # fmt: skip
        rejects.add(order_ids.duplicated(keep=False).to_numpy() & ~bad_order, "order_id", frame["order_id"],
                    "duplicate order_id in this file: every occurrence rejected")  # fmt: skip
    if text_ids:
        keys, blank = _blank(frame["contact_id"])
        rejects.add(blank.to_numpy(), "contact_id", frame["contact_id"], "missing contact id")
        contact_key = keys.astype(object)
    else:
        contact_key, bad_contact = whole_ids(frame["contact_id"])
        rejects.add(
            bad_contact, "contact_id", frame["contact_id"], "not a contact id (a positive whole number)"
        )
    when = _read_dates(frame["ordered_at"], "ordered_at", date_format, rejects, notes)
    rejects.add(when.isna().to_numpy() & ~rejects.bad, "ordered_at", frame["ordered_at"], "missing date")
    status_text = None
    if "status" in frame:
        status_text, status_blank = _blank(frame["status"])
        status_text = status_text.str.lower().where(~status_blank, "")  # a blank status is a completed order
    status = (
        status_text.map(lambda v: STATUS_WORDS.get(v)) if status_text is not None
        else pd.Series(OrderStatus.COMPLETED, index=frame.index)
    )  # fmt: skip
    if status_text is not None:
        rejects.add(status.isna().to_numpy(), "status", frame["status"],
                    "unknown status; use completed, cancelled or returned")  # fmt: skip
    cancelled = (status == OrderStatus.CANCELLED).to_numpy()
    amount = _numbers(frame["amount"], decimal)
    rejects.add((amount.isna() & ~cancelled).to_numpy() | (amount < 0).to_numpy(), "amount", frame["amount"],
                "missing or negative amount (only a cancelled order may have none)")  # fmt: skip
    refunded = (
        _numbers(frame["refunded"], decimal) if "refunded" in frame else pd.Series(0.0, index=frame.index)
    )
    if "refunded" in frame:
        rejects.add((refunded < 0).to_numpy(), "refunded", frame["refunded"], "a negative refund")
        rejects.add(
            (refunded > amount).to_numpy(), "refunded", frame["refunded"], "refunded more than the amount"
        )
    category = pd.Series(None, index=frame.index, dtype=object)
    if "product_category" in frame:
        category_text, category_blank = _blank(frame["product_category"])
        category = category_text.where(~category_blank, None).astype(object)
    out = pd.DataFrame(
        {
            "line": frame["line"].to_numpy(),
            "order_id": order_ids.to_numpy(),
            "contact_key": contact_key.to_numpy(),
            "ordered_at": when.to_numpy(),
            "amount": amount.to_numpy(),
            "product_category": category.to_numpy(),
            "status": status.astype(object).to_numpy(),
            "refunded": refunded.fillna(0).to_numpy(),
        }
    )
    return out[~rejects.bad].reset_index(drop=True), rejects.frame(), notes


@dataclass
class LoadReport:
    """What a load read, did (or in a dry run would do), and left out."""

    contacts: int  # contacts taken from the file (new, changed or unchanged)
    orders: int  # orders taken from the orders file
    rejects: pd.DataFrame
    rejects_path: Path | None
    changes: sources.SourceChanges = field(default_factory=sources.SourceChanges)
    notes: list[str] = field(default_factory=list)
    dry_run: bool = False
    replaced: bool = False
    kept_absent: int = 0  # stored contacts not in the file, kept
    orders_given: bool = False
    rejects_extra: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=REJECT_COLUMNS))

    def lines(self) -> list[str]:
        c = self.changes
        out = [*self.notes]
        if self.replaced:
            out.append(f"replaced the base: {self.contacts:,} contacts and {self.orders:,} orders")
        else:
            out.append(
                f"contacts: {c.contacts_new:,} new, {c.contacts_changed:,} changed, "
                f"{c.contacts_unchanged:,} unchanged"
                + (f", {c.contacts_removed:,} removed" if c.contacts_removed else "")
            )
            if self.kept_absent:
                out.append(
                    f"  {self.kept_absent:,} stored contacts not in this file were kept "
                    "(--delete-missing removes them; --replace replaces the whole base)"
                )
            if c.stale_lines:
                out.append(
                    f"  {len(c.stale_lines):,} rows older than the stored contact (updated_at) were not applied"
                )
            out.append(
                f"orders: {c.orders_new:,} new, {c.orders_changed:,} updated, {c.orders_unchanged:,} unchanged"
            )
        if not self.rejects.empty:
            rows = self.rejects.groupby(["file", "line"]).ngroups
            out.append(
                f"rejected {rows:,} rows ({len(self.rejects):,} problems); all of them are in {self.rejects_path}"
            )
            for r in self.rejects.head(20).itertuples(index=False):
                out.append(f"  {r.file} line {r.line}, column {r.column!r}: {r.reason} (value {r.value!r})")
            if len(self.rejects) > 20:
                out.append(f"  ... and {len(self.rejects) - 20:,} more")
        if self.dry_run:
            out.append("dry run: nothing was written; run the same command without --dry-run to load")
        return out


@dataclass(frozen=True)
class LoadOptions:
    delimiter: str | None = None
    decimal: str | None = None
    date_format: str | None = None
    encoding: str = "utf-8"
    rejects_path: str | Path | None = None
    replace: bool = False
    delete_missing: bool = False
    remove_path: str | Path | None = None
    dry_run: bool = False
    max_reject_share: float = DEFAULT_MAX_REJECT_SHARE


def _contact_columns(traits_file: TraitsFile, path: Path) -> dict[str, tuple[str, str]]:
    layout = traits_file.contacts
    wanted: dict[str, tuple[str, str]] = {}
    if layout.ids is not ContactIds.GENERATED:
        wanted["contact_id"] = (
            layout.id_column,
            "add `contacts: {{id_column: {header}}}` to the traits file "
            "(or `contacts: {{ids: generated}}` for a file without ids)",
        )
    for trait in traits_file.catalog.traits:
        wanted[trait.name] = (
            trait.source_column,
            f"add `column: {{header}}` to trait {trait.name} in the traits file",
        )
    return wanted


def _optional_dates(frame: pd.DataFrame, traits_file: TraitsFile) -> pd.DataFrame:
    layout = traits_file.contacts
    return frame.rename(
        columns={
            h: n
            for n, h in (("created_at", layout.created_at), ("updated_at", layout.updated_at))
            if h in frame.columns and h != n
        }  # fmt: skip
    )


def _order_columns(traits_file: TraitsFile, frame: pd.DataFrame) -> dict[str, tuple[str, str]]:
    layout = traits_file.orders
    wanted = {}
    for name, header in layout.columns.items():
        if name == "order_id" and layout.order_ids is OrderIds.GENERATED:
            continue
        if name in ORDER_OPTIONAL and header == name and header not in frame.columns:
            continue  # an optional field the file does not have and the traits file does not map
        wanted[name] = (header, f"add `orders: {{{{{name}: {{header}}}}}}` to the traits file")
    return wanted


def _share_check(file: str, rows: int, rejects: pd.DataFrame, limit: float, path: Path | None) -> None:
    if not rows or rejects.empty:
        return
    bad = rejects[(rejects["file"] == file) & ~rejects["reason"].astype(str).str.startswith(STALE)]
    rejected = bad.groupby("line").ngroups  # rows superseded by newer stored data are not bad input
    share = rejected / rows
    if share > limit:
        raise LoadError(
            f"{file}: {rejected:,} of {rows:,} rows ({share:.1%}) rejected, above the limit of {limit:.0%}; nothing "
            f"was changed. The rejected rows and reasons are in {path}; fix them, or pass "
            f"--max-reject-share {min(1.0, np.ceil(share * 100) / 100):g} to load the rest"
        )


def _joined(rejects: list[pd.DataFrame]) -> pd.DataFrame:
    """Reject frames as one (empty ones left out: concat would warn about their all-NA columns)."""
    present = [r for r in rejects if not r.empty]
    return pd.concat(present, ignore_index=True) if present else pd.DataFrame(columns=REJECT_COLUMNS)


def _write_rejects(rejected: pd.DataFrame, path: Path) -> Path | None:
    """The rejected rows, written atomically (the same path before and inside the transaction)."""
    if rejected.empty:
        return None
    files.write_text(path, rejected.to_csv(index=False))
    return path


def _ids_file(path: Path, traits_file: TraitsFile, options: LoadOptions) -> pd.Series:
    """The ids of a --remove file: its id column (as the traits file names it), or its only column (a list of
    ids with no header)."""
    frame, delimiter = _read_table(path, options.delimiter, options.encoding)
    column = traits_file.contacts.id_column
    if column not in frame.columns:
        if len(frame.columns) != 1:
            raise LoadError(
                f"{path}: no column {column!r} among {', '.join(map(str, frame.columns))}; give a file with one "
                "column of contact ids, or name the id column as the traits file does"
            )
        # one column not named as the id column: a list without a header, its first line an id too
        return pd.concat([pd.Series([str(frame.columns[0])]), frame[frame.columns[0]]], ignore_index=True)
    return frame[column]


def load_files(
    engine: Engine,
    contacts_path: str | Path | None,
    traits_path: str | Path | None,
    orders_path: str | Path | None = None,
    options: LoadOptions | None = None,
    say: Callable[[str], None] = lambda _line: None,
    **overrides: object,
) -> LoadReport:
    """Load a contacts file (and orders, and ids to remove) into the warehouse; see the module docstring."""
    options = options or LoadOptions()
    if overrides:
        options = LoadOptions(**{**options.__dict__, **overrides})
    if not 0 <= options.max_reject_share <= 1:
        raise LoadError(f"--max-reject-share must be between 0 and 1, not {options.max_reject_share}")
    if contacts_path is None and orders_path is None and options.remove_path is None:
        raise LoadError("nothing to load: give a contacts file, --orders, or --remove")
    if options.replace and contacts_path is None:
        raise LoadError("--replace needs a contacts file: it replaces the whole base with that file")
    if options.delete_missing and contacts_path is None:
        raise LoadError(
            "--delete-missing needs a contacts file: it removes the contacts that file does not hold"
        )
    ensure_catalog_tables(engine)
    stored = sources.stored_catalog(engine)
    if traits_path is not None:
        traits_file = read_traits_file(traits_path)
    elif contacts_path is not None:
        raise LoadError("a contacts file needs --traits, the traits file that declares each trait's kind")
    elif stored is None:
        raise LoadError("the warehouse has no contacts yet: load a contacts file (with --traits) first")
    else:
        traits_file = TraitsFile(stored)
    notes: list[str] = []
    rejects: list[pd.DataFrame] = []
    contacts = pd.DataFrame()
    rejects_target = (
        Path(options.rejects_path)
        if options.rejects_path
        else persona_home() / f"load_rejects_{dt.datetime.now():%Y%m%d_%H%M%S}.csv"
    )
    given_decimal = options.decimal
    decimal = options.decimal or "."
    rows = {}
    file_keys = None
    if contacts_path is not None:
        contacts_path = Path(contacts_path)
        raw, used_delimiter = _read_table(contacts_path, options.delimiter, options.encoding)
        raw = _map_columns(contacts_path, _optional_dates(raw, traits_file),
                           _contact_columns(traits_file, contacts_path), used_delimiter)  # fmt: skip
        numeric = [t.name for t in traits_file.catalog.traits if t.kind is TraitKind.NUMERIC]
        decimal = options.decimal or _detect_decimal(raw, numeric)
        notes.append(
            f"read {contacts_path.name}: {len(raw):,} rows, delimiter {used_delimiter!r}, decimal mark {decimal!r}"
        )
        contacts, contact_rejects, contact_notes = parse_contacts(
            raw, traits_file, contacts_path.name, decimal, options.date_format
        )
        notes += contact_notes
        rejects.append(contact_rejects)
        rows[contacts_path.name] = len(raw)
        if contacts.empty:
            if contact_rejects.empty:
                raise LoadError(
                    f"{contacts_path}: the file has a header but no rows of data; nothing was changed"
                )
            first = "; ".join(
                f"line {r.line} {r.column}: {r.reason}" for r in contact_rejects.head(3).itertuples()
            )
            raise LoadError(f"{contacts_path}: no row could be loaded ({first}); nothing was changed")
        file_keys = raw["contact_id"] if "contact_id" in raw else None
    orders = pd.DataFrame()
    if orders_path is not None:
        orders_path = Path(orders_path)
        if traits_file.contacts.ids is ContactIds.GENERATED:
            raise LoadError(
                f"{orders_path}: contacts loaded without ids (ids: generated) cannot be matched to orders; give "
                "the contacts file an id column that the orders file uses too"
            )
        raw_orders, orders_delimiter = _read_table(orders_path, options.delimiter, options.encoding)
        raw_orders = _map_columns(
            orders_path, raw_orders, _order_columns(traits_file, raw_orders), orders_delimiter
        )
        order_decimal = given_decimal or _detect_decimal(raw_orders, ["amount", "refunded"], decimal)
        orders, order_rejects, order_notes = parse_orders(
            raw_orders, traits_file, orders_path.name, order_decimal, options.date_format
        )
        notes += order_notes
        rejects.append(order_rejects)
        rows[orders_path.name] = len(raw_orders)
    rejected = _joined(rejects)
    if contacts_path is not None:  # before any writing: a file mostly rejected changes nothing
        early = _write_rejects(rejected, rejects_target)
        _share_check(contacts_path.name, rows[contacts_path.name], rejected, options.max_reject_share, early)
    removals = _ids_file(Path(options.remove_path), traits_file, options) if options.remove_path else None
    now = pd.Timestamp(dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0))
    report = LoadReport(len(contacts), 0, rejected, None, notes=notes, dry_run=options.dry_run)
    report.orders_given = orders_path is not None
    with engine.connect() as conn:
        transaction = conn.begin()
        try:
            _apply(conn, traits_file, stored, contacts, contacts_path.name if contacts_path else None, file_keys,
                   orders, orders_path.name if orders_path else None, removals, options, now, report, say)  # fmt: skip
            report.rejects = rejected = _joined([rejected, report.rejects_extra])
            report.rejects_path = _write_rejects(rejected, rejects_target)
            for file, count in rows.items():
                _share_check(file, count, rejected, options.max_reject_share, report.rejects_path)
            sources.drop_staging(conn)
            if options.dry_run:
                transaction.rollback()
            else:
                transaction.commit()
        except BaseException:
            transaction.rollback()
            raise
    if not options.dry_run:
        sources.analyze(engine)
    return report


def _stored_ids(conn: Connection, keys: pd.Series, ids_kind: ContactIds) -> pd.Series:
    """The stored contact_id of each of a file's keys (<NA> where none); keys: (n,) as the file wrote them."""
    if ids_kind is ContactIds.TEXT:
        return sources.external_ids(conn, keys.astype(str).str.strip())
    ints, bad = whole_ids(keys)
    found = np.isin(ints.to_numpy(), sources.stored_contact_ids(conn)) & ~bad
    # nullable integers: a float would round ids above 2^53 onto other contacts
    return pd.Series(pd.arrays.IntegerArray(ints.to_numpy(), ~found), index=keys.index)


def _with_ids(conn: Connection | None, contacts: pd.DataFrame, ids_kind: ContactIds) -> pd.DataFrame:
    """Contacts with their contact_id: the file's integer id, the stored id of a text key, or a new id."""
    if ids_kind is ContactIds.INTEGER:
        return contacts.assign(external_id=None)
    start = sources.next_contact_id(conn) if conn is not None else 1
    if ids_kind is ContactIds.GENERATED or conn is None:
        ids = np.arange(start, start + len(contacts), dtype="int64")
        return contacts.assign(contact_id=ids, external_id=contacts.get("external_id"))
    known = sources.external_ids(conn, contacts["external_id"])
    new = known.isna().to_numpy()
    ids = np.array(known.fillna(0).to_numpy(), dtype="int64")  # a writable copy
    ids[new] = start + np.arange(int(new.sum()))
    return contacts.assign(contact_id=ids)


def _dated(contacts: pd.DataFrame, now: pd.Timestamp) -> pd.DataFrame:
    """created_at and updated_at: the load time where the file gives neither."""
    out = contacts.copy()
    out["updated_at"] = out["updated_at"].fillna(now) if "updated_at" in out else now
    # a new contact's first version is valid from its creation, else from the change the file dates
    out["created_at"] = (
        out["created_at"].fillna(out["updated_at"]) if "created_at" in out else out["updated_at"]
    )
    return out


def _reject_rows(file: str, lines: np.ndarray, keys: np.ndarray, column: str, values: np.ndarray,
                 reason: str) -> pd.DataFrame:  # fmt: skip
    return pd.DataFrame({"file": file, "line": lines, "contact_id": keys, "column": column,
                         "value": values, "reason": reason})  # fmt: skip


def _apply(
    conn: Connection,
    traits_file: TraitsFile,
    stored: TraitCatalog | None,
    contacts: pd.DataFrame,
    contacts_file: str | None,
    file_keys: pd.Series | None,
    orders: pd.DataFrame,
    orders_file: str | None,
    removals: pd.Series | None,
    options: LoadOptions,
    now: pd.Timestamp,
    report: LoadReport,
    say: Callable[[str], None],
) -> None:
    """Every write of one load, in the caller's transaction."""
    catalog, ids_kind = traits_file.catalog, traits_file.contacts.ids
    changes = report.changes
    extra: list[pd.DataFrame] = []
    dated = "updated_at" in contacts.columns  # the file says when each contact changed
    fresh = stored is None or options.replace
    if fresh:
        before = sources.source_counts(conn)
        if options.replace and (before["contacts"] or before["orders"]):
            say(
                f"--replace: the stored {before['contacts']:,} contacts, their trait history and "
                f"{before['orders']:,} orders {'would be' if options.dry_run else 'are'} replaced by this load's "
                f"{len(contacts):,} contacts and {len(orders):,} orders"
            )
        contacts = _dated(_with_ids(None, contacts, ids_kind), now)
        history = contacts.rename(columns={"created_at": "valid_from"}).assign(valid_to=pd.NaT)
        sources.replace_in(conn, catalog, contacts, history, orders.iloc[0:0])
        changes.contacts_new = len(contacts)
        report.replaced = options.replace
        changes.replaced_contacts, changes.replaced_orders = before["contacts"], before["orders"]
    elif not contacts.empty:
        report.notes += sources.align_catalog(conn, stored, catalog)
        stored_kind = sources.key_kind(conn)
        if {ids_kind.value, stored_kind} == {"integer", "text"}:
            raise LoadError(
                f"the stored contacts are keyed by {stored_kind} ids and the traits file declares {ids_kind} ids: "
                "they cannot be matched; declare `contacts: {ids: "
                + stored_kind
                + "}` or load with --replace"
            )
        contacts = _dated(_with_ids(conn, contacts, ids_kind), now)
        merged = sources.merge_contacts(conn, catalog, contacts, dated=dated)
        for name in ("contacts_new", "contacts_changed", "contacts_unchanged", "stale_lines"):
            setattr(changes, name, getattr(merged, name))
        if merged.stale_lines:
            stale = contacts[contacts["line"].isin(merged.stale_lines)]
            keys = stale["external_id"] if ids_kind is ContactIds.TEXT else stale["contact_id"]
            extra.append(_reject_rows(contacts_file, stale["line"].to_numpy(), keys.astype(str).to_numpy(),
                                      "updated_at", stale["updated_at"].astype(str).to_numpy(),
                                      f"{STALE}: not applied"))  # fmt: skip
    else:
        sources.ensure_sources(conn, catalog)
    if options.delete_missing and not fresh and (file_keys is not None or ids_kind is ContactIds.GENERATED):
        if ids_kind is ContactIds.GENERATED:  # no key to match: the contacts of this file are the base
            keep = contacts["contact_id"].to_numpy()
        else:
            keep = _stored_ids(conn, file_keys, ids_kind).dropna().to_numpy(dtype="int64")
        stored_ids = sources.stored_contact_ids(conn)
        changes.contacts_removed += sources.remove_contacts(conn, np.setdiff1d(stored_ids, keep), now)
    if removals is not None:
        found = _stored_ids(conn, removals, ids_kind)
        if found.isna().any():
            report.notes.append(f"{int(found.isna().sum()):,} ids in the remove file are not stored contacts")
        changes.contacts_removed += sources.remove_contacts(conn, found.dropna().to_numpy(dtype="int64"), now)
    if not orders.empty:
        contact_ids = _stored_ids(conn, pd.Series(orders["contact_key"].to_numpy()), ids_kind)
        unknown = contact_ids.isna().to_numpy()
        if unknown.any():
            lost = orders[unknown]
            extra.append(_reject_rows(orders_file, lost["line"].to_numpy(), lost["contact_key"].astype(str).to_numpy(),
                                      "contact_id", lost["contact_key"].astype(str).to_numpy(),
                                      "no stored or loaded contact has this contact id"))  # fmt: skip
        taken = (
            orders[~unknown]
            .drop(columns=["contact_key"])
            .assign(contact_id=contact_ids[~unknown].to_numpy(dtype="int64"))
        )
        new, changed, unchanged = sources.merge_orders(conn, catalog, taken.drop(columns=["line"]))
        changes.orders_new, changes.orders_changed, changes.orders_unchanged = new, changed, unchanged
        report.orders = len(taken)
    if not fresh and not options.delete_missing and not contacts.empty:
        total = sources.source_counts(conn)["contacts"]
        report.kept_absent = max(0, total - len(contacts))
    report.rejects_extra = _joined(extra)
