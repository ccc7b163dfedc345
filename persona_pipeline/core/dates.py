"""Date columns read all one way or refused.

Parsing each value on its own let one column hold `04-09-2012` as April 9 and `21-08-2013` as August 21.
Here a format is chosen for the whole column: the one that reads the most values. A value whose first
field is above 12 settles a column as day-first, one whose second field is above 12 as month-first; a
column that nothing settles is refused with the fix (`--date-format`), never guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from persona_pipeline.errors import LoadError

# Words that stand for "no value" in files; such cells are blank, not unreadable.
BLANK_WORDS = frozenset({"nan", "null", "none", "na", "n/a", "<na>", "nat"})

_YEAR_FIRST = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y%m%d")
# Day-first before month-first only decides which format an identical reading is reported under.
_DAY_OR_MONTH_FIRST = tuple(
    f"{first}{sep}{second}{sep}{year}"
    for first, second in (("%d", "%m"), ("%m", "%d"))
    for sep in ("-", "/", ".")
    for year in ("%Y", "%y")
)
_TIMES = ("", " %H:%M", " %H:%M:%S", " %H:%M:%S.%f", "T%H:%M", "T%H:%M:%S", "T%H:%M:%S.%f")
# ISO 8601 with an offset or a Z. pandas' %z also reads Z, so both forms read a Z column, identically.
_ZONED = tuple(
    f"%Y-%m-%d{time}{zone}"
    for time in ("T%H:%M:%S", "T%H:%M:%S.%f", " %H:%M:%S", " %H:%M:%S.%f")
    for zone in ("%z", "Z")
)
_TEXTUAL_MONTHS = ("%d %b %Y", "%d %B %Y", "%b %d %Y", "%b %d, %Y", "%B %d, %Y", "%d-%b-%Y", "%d-%b-%y")
# No two-digit-year-first formats (%y-%m-%d): they would make nearly every %d/%m/%y column ambiguous.
SUPPORTED_FORMATS: tuple[str, ...] = (
    tuple(f"{date}{time}" for date in (*_YEAR_FIRST, *_DAY_OR_MONTH_FIRST) for time in _TIMES)
    + _ZONED
    + _TEXTUAL_MONTHS
)

# Candidates that read none of this many evenly spaced unique values are not tried on the whole column.
SAMPLE_SIZE = 2_000
_NOT_READ = np.iinfo(np.int64).min  # NaT as int64 nanoseconds
# Datetimes pandas can hold in nanoseconds (whole days inside its range); others cannot be stored.
_EARLIEST = np.datetime64("1677-09-22", "us")
_LATEST = np.datetime64("2262-04-11", "us")


@dataclass(frozen=True)
class DateReading:
    """How one column was read."""

    format: str | None  # the strftime format used; None for datetime input or when no format reads a value
    values: (
        pd.Series
    )  # datetime64[ns], naive (offsets converted to UTC); NaT where blank or unread; input's index
    unread: np.ndarray  # (n,) bool: non-blank values the format does not read (the caller rejects those rows)


def read_dates(
    values: pd.Series, column: str, date_format: str | None = None, trait: str | None = None
) -> DateReading:
    """Read a column of dates with `date_format`, or with the one format inferred from the whole column.

    Raises LoadError when the best formats read the column differently (e.g. only values such as
    04-09-2012, which are dates both day-first and month-first), naming the column (as the file heads it)
    and the fix: --date-format, or the `format:` of the date trait the column holds (`trait`; None for a
    record's own dates, created_at and the like, which no trait describes).
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        return _already_dates(values)
    codes, uniques = pd.factorize(values)  # codes (n,): index into uniques, -1 where NaN/None
    text = _stripped_text(uniques)  # (u,)
    given = ~_blank(text)  # (u,) bool
    to_read = text[given].reset_index(drop=True)  # (m,) the distinct non-blank values
    if date_format:
        chosen: str | None = date_format
        read = _nanoseconds_read(to_read, date_format)
    else:
        chosen, read = _inferred(to_read, column, trait)
    # One slot more than the uniques, for code -1 (NaN): NaT and not unread.
    nanoseconds = np.full(len(text) + 1, _NOT_READ, dtype=np.int64)
    nanoseconds[:-1][given] = read
    unread = np.zeros(len(text) + 1, dtype=bool)
    unread[:-1][given] = read == _NOT_READ
    return DateReading(
        format=chosen,
        values=pd.Series(nanoseconds[codes].view("datetime64[ns]"), index=values.index, name=values.name),
        unread=unread[codes],
    )


def _already_dates(values: pd.Series) -> DateReading:
    """Datetimes (e.g. from Parquet) need no format; zoned ones become naive UTC like parsed offsets do."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    nanoseconds = _nanoseconds(values.to_numpy())
    # Only a datetime outside pandas' nanosecond range (years 1677-2262) is unread; NaT stays blank.
    unread = (nanoseconds == _NOT_READ) & values.notna().to_numpy()
    return DateReading(
        format=None,
        values=pd.Series(nanoseconds.view("datetime64[ns]"), index=values.index, name=values.name),
        unread=unread,
    )


def _stripped_text(uniques: pd.Index) -> pd.Series:
    """The values as trimmed text; whole floats (ints read with blanks, e.g. 20120904.0) without `.0`."""
    series = pd.Series(uniques)
    if pd.api.types.is_float_dtype(series.dtype):
        floats = series.to_numpy(dtype=float)
        whole = np.isfinite(floats) & (np.mod(floats, 1) == 0) & (np.abs(floats) < 1e15)
        as_ints = np.where(whole, floats, 0).astype(np.int64).astype(str)
        return pd.Series(np.where(whole, as_ints, series.astype(str).to_numpy()), dtype=object)
    return series.astype(str).str.strip()


def _blank(text: pd.Series) -> np.ndarray:
    """(u,) bool: empty text or a word that means no value."""
    return ((text == "") | text.str.lower().isin(BLANK_WORDS)).to_numpy(dtype=bool)


def _nanoseconds_read(text: pd.Series, date_format: str) -> np.ndarray:
    """(m,) int64 nanoseconds since the epoch (naive UTC) as `date_format` reads each value exactly."""
    try:
        # utc=True: mixed offsets would otherwise raise; naive values are taken as they are.
        parsed = pd.to_datetime(text, format=date_format, errors="coerce", exact=True, utc=True, cache=False)
    except (ValueError, re.error) as exc:
        raise LoadError(f"--date-format {date_format}: not a usable date format ({exc})") from exc
    return _nanoseconds(parsed.dt.tz_localize(None).to_numpy())


def _nanoseconds(datetimes: np.ndarray) -> np.ndarray:
    """(k,) int64 nanoseconds from a naive datetime64 array of any unit; out of range and NaT are _NOT_READ."""
    coarse = datetimes.astype("datetime64[us]")
    representable = (coarse >= _EARLIEST) & (coarse < _LATEST)  # NaT compares False
    return np.where(representable, datetimes.astype("datetime64[ns]").view(np.int64), _NOT_READ)


def _inferred(text: pd.Series, column: str, trait: str | None) -> tuple[str | None, np.ndarray]:
    """The format reading the most distinct values, and its (m,) reading; refused when the best disagree."""
    nothing = np.full(len(text), _NOT_READ, dtype=np.int64)
    if text.empty:
        return None, nothing
    whole_column = len(text) <= SAMPLE_SIZE
    sample = text if whole_column else text.iloc[np.linspace(0, len(text) - 1, SAMPLE_SIZE).astype(np.int64)]
    sample_reads = {fmt: _nanoseconds_read(sample, fmt) for fmt in SUPPORTED_FORMATS}
    survivors = [fmt for fmt, read in sample_reads.items() if (read != _NOT_READ).any()]
    if not survivors:
        return None, nothing
    reads = {fmt: sample_reads[fmt] if whole_column else _nanoseconds_read(text, fmt) for fmt in survivors}
    counts = {fmt: int(np.count_nonzero(read != _NOT_READ)) for fmt, read in reads.items()}
    most = max(counts.values())
    best = [fmt for fmt in survivors if counts[fmt] == most]  # in preference order
    chosen = best[0]
    rivals: list[str] = []  # best formats reading the column otherwise, one per distinct reading
    for fmt in best[1:]:
        if not any(np.array_equal(reads[fmt], reads[seen]) for seen in (chosen, *rivals)):
            rivals.append(fmt)
    if rivals:
        raise LoadError(_refusal(column, text, chosen, rivals, reads, trait))
    return chosen, reads[chosen]


def _refusal(
    column: str,
    text: pd.Series,
    first: str,
    rivals: list[str],
    reads: dict[str, np.ndarray],
    trait: str | None,
) -> str:
    """One line: a value read two ways (or two values each read one way only), and the fix."""
    second = rivals[0]
    a, b = reads[first], reads[second]
    # quoted for the shell (a format with a space would split); a date trait can take it as `format:` instead
    fix = f"pass --date-format '{first}' (or {' or '.join(repr(r) for r in rivals)})"
    if trait is not None:  # a contact's created or updated time, or an order's, has no trait to carry it
        fix += f", or give trait {trait} `format: '{first}'` in the traits file"
    if np.array_equal(a == _NOT_READ, b == _NOT_READ):  # the same values read, into different dates
        i = np.flatnonzero(a != b)[0]
        return (
            f"column {column!r}: dates such as {text.iloc[i]!r} read as {_spoken(a[i])} ({first}) "
            f"or as {_spoken(b[i])} ({second}), and no value settles it; {fix}"
        )
    only_a = np.flatnonzero((a != _NOT_READ) & (b == _NOT_READ))[0]  # equal counts: both exist
    only_b = np.flatnonzero((b != _NOT_READ) & (a == _NOT_READ))[0]
    return (
        f"column {column!r} mixes formats: {text.iloc[only_a]!r} reads as {first} ({_spoken(a[only_a])}) "
        f"but not as {second}, {text.iloc[only_b]!r} as {second} ({_spoken(b[only_b])}) but not as {first}; "
        f"{fix}"
    )


def _spoken(nanoseconds: np.int64) -> str:
    """A datetime as people say it, so day and month cannot be confused: 4 September 2012 (10:30)."""
    moment = pd.Timestamp(int(nanoseconds))
    said = f"{moment.day} {moment:%B %Y}"
    if moment != moment.normalize():
        said += f" {moment:%H:%M:%S}" + (f".{moment:%f}" if moment.microsecond or moment.nanosecond else "")
    return said
