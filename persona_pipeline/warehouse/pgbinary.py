"""PostgreSQL's binary COPY format, encoded with numpy: no text to format in Python or to parse in the server.

For 1,000,000 score rows the server's COPY takes about 30% less CPU than from CSV (no number, timestamp or
quoting parser), and encoding takes tens of milliseconds instead of half a second. Rows of one shape (the
same byte length for every field, NULLs included) are one numpy structured array, so a frame is encoded
as a few such groups; the row order of a COPY does not matter to a table.

Binary COPY needs each value in exactly its column's type, so `encode` returns None for anything it does not
map exactly (a numeric column, a float for an integer column, objects of mixed types...), and the caller
falls back to CSV, which lets the server convert.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
TRAILER = (-1).to_bytes(2, "big", signed=True)
_POSTGRES_EPOCH = np.datetime64("2000-01-01T00:00:00", "us")
_FIXED = {"int2": ">i2", "int4": ">i4", "int8": ">i8", "float4": ">f4", "float8": ">f8", "bool": "u1"}
_TEXT = {"text", "varchar"}
ROWS_PER_CHUNK = 65_536  # rows encoded at a time while the server reads the stream
MAX_SHAPES = 256  # distinct row shapes beyond this (many text lengths and NULL patterns): CSV does better


class _Column:
    """One column ready to lay out: fixed-width values with an optional NULL mask, or text by level."""

    def __init__(
        self,
        data: np.ndarray,
        present: np.ndarray | None = None,
        codes: np.ndarray | None = None,
    ) -> None:
        self.data = data  # fixed: one value per row; text: the distinct values' bytes, then b"" for NULL
        self.present = present if present is not None and not present.all() else None
        self.codes = codes  # text: index into data per row (NULL: the last)
        if codes is not None:
            self.lengths = np.array([len(v) for v in data], np.int32)
            self.lengths[-1] = -1
        else:
            self.lengths = np.array([-1, data.dtype.itemsize], np.int32)  # by NULL mask: absent, present

    def shape_index(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The field lengths this column takes, and each row's index into them (None: all rows the same)."""
        if self.codes is not None:
            used = np.bincount(self.codes, minlength=len(self.data)) > 0
            values = np.unique(self.lengths[used])
            if len(values) == 1:
                return values, None
            return values, np.searchsorted(values, self.lengths)[self.codes]
        if self.present is None:
            return self.lengths[1:], None
        if not self.present.any():
            return self.lengths[:1], None
        return self.lengths, self.present.astype(np.int64)


def encode(frame: pd.DataFrame, types: dict[str, str]) -> Iterator[bytes] | None:
    """The frame as a binary COPY stream for columns of these PostgreSQL types (pg_type.typname), or None.

    The stream is made chunk by chunk as it is read, so a million rows never sit in memory encoded.
    """
    columns = []
    for name in frame.columns:
        kind = types.get(name)
        column = _column(frame[name], kind) if kind else None
        if column is None:
            return None
        columns.append(column)
    shape_of_row, shapes = _shapes(columns, len(frame))
    if shapes is None:
        return None
    return _stream(columns, shape_of_row, shapes, len(frame), ROWS_PER_CHUNK)


def _stream(
    columns: list[_Column],
    shape_of_row: np.ndarray | None,
    shapes: list[tuple[int, ...]],
    n: int,
    rows_per_chunk: int,
) -> Iterator[bytes]:
    yield HEADER
    for start in range(0, n, rows_per_chunk):
        stop = min(n, start + rows_per_chunk)
        if shape_of_row is None:  # one shape: the rows as they are, no gathering
            yield _encode_shape(columns, shapes[0], slice(start, stop), stop - start)
            continue
        part = shape_of_row[start:stop]
        order = np.argsort(part, kind="stable")  # radix sort of small integers
        bounds = np.searchsorted(part[order], np.arange(len(shapes) + 1))
        for index, shape in enumerate(shapes):
            if bounds[index + 1] > bounds[index]:
                rows = order[bounds[index] : bounds[index + 1]] + start
                yield _encode_shape(columns, shape, rows, len(rows))
    yield TRAILER


def _shapes(columns: list[_Column], n: int) -> tuple[np.ndarray | None, list[tuple[int, ...]] | None]:
    """Each row's shape: an index into the distinct tuples of field lengths (None: one shape for all rows).

    Linear time: a column's lengths take few values, known from its levels or its NULL mask.
    """
    key = None
    radix = 1
    per_column = []
    for column in columns:
        values, index = column.shape_index()
        per_column.append(values)
        if index is not None:
            key = index * radix + (key if key is not None else 0)
        radix *= len(values)
        if radix > 1 << 20:
            return None, None
    if n == 0:
        return None, []
    if key is None:
        distinct = np.zeros(1, dtype=np.int64)
        shape_of_row = None
    else:
        present = np.bincount(key, minlength=radix) > 0
        distinct = np.flatnonzero(present)
        if len(distinct) > MAX_SHAPES:
            return None, None
        shape_of_row = (np.cumsum(present) - 1).astype(np.int16)[key]
    shapes = []
    for code in distinct.tolist():
        shape = []
        for values in per_column:
            shape.append(int(values[code % len(values)]))
            code //= len(values)
        shapes.append(tuple(shape))
    return shape_of_row, shapes


def _encode_shape(
    columns: list[_Column], shape: tuple[int, ...], rows: np.ndarray | slice, count: int
) -> bytes:
    fields = [("count", ">i2")]
    for j, length in enumerate(shape):
        fields.append((f"l{j}", ">i4"))
        if length > 0:
            column = columns[j]
            fields.append((f"v{j}", f"S{length}" if column.codes is not None else column.data.dtype))
    out = np.empty(count, dtype=np.dtype(fields))
    out["count"] = len(shape)
    for j, length in enumerate(shape):
        out[f"l{j}"] = length
        if length <= 0:
            continue
        column = columns[j]
        if column.codes is None:
            out[f"v{j}"] = column.data[rows]
        else:
            levels = np.array([v if len(v) == length else b"" for v in column.data], dtype=f"S{length}")
            out[f"v{j}"] = levels[column.codes[rows]]
    return out.tobytes()


def _column(series: pd.Series, kind: str) -> _Column | None:
    dtype = series.dtype
    if kind in _FIXED:
        target = np.dtype(_FIXED[kind])
        if kind == "bool":
            if not pd.api.types.is_bool_dtype(dtype):
                return None
            return _Column(series.to_numpy(dtype="bool", na_value=False).astype("u1"), _present(series))
        if kind.startswith("int"):
            if not pd.api.types.is_integer_dtype(dtype):
                return None
            if pd.api.types.is_unsigned_integer_dtype(dtype) and len(series) and series.max() >= 2**63:
                return None  # beyond int64 before any column's range
            values = series.to_numpy(dtype="int64", na_value=0)
            info = np.iinfo(target.newbyteorder("="))
            if values.size and (values.min() < info.min or values.max() > info.max):
                return None  # out of the column's range: let the server say so
            return _Column(values.astype(target), _present(series))
        if not (pd.api.types.is_float_dtype(dtype) or pd.api.types.is_integer_dtype(dtype)):
            return None
        values = series.to_numpy(dtype="float64", na_value=np.nan)
        return _Column(values.astype(target), ~np.isnan(values))  # NaN is stored as NULL, as from CSV
    if kind in ("timestamp", "date"):  # naive values only: a zone's meaning is the server's to decide
        if not pd.api.types.is_datetime64_any_dtype(dtype):
            return None
        if isinstance(dtype, pd.DatetimeTZDtype):
            return None
        stamps = series
        present = stamps.notna().to_numpy()
        if kind == "date":
            days = stamps.to_numpy(dtype="datetime64[D]") - _POSTGRES_EPOCH.astype("datetime64[D]")
            return _Column(np.where(present, days.astype(np.int64), 0).astype(">i4"), present)
        micros = (stamps.to_numpy(dtype="datetime64[us]") - _POSTGRES_EPOCH).astype(np.int64)
        return _Column(np.where(present, micros, 0).astype(">i8"), present)
    if kind in _TEXT:
        if isinstance(dtype, pd.CategoricalDtype):
            codes = series.cat.codes.to_numpy()
            levels = list(series.cat.categories)
        elif pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
            codes, uniques = pd.factorize(series, use_na_sentinel=True)
            levels = list(uniques)
        else:
            return None
        if not all(isinstance(v, str) and "\x00" not in v for v in levels):
            return (
                None  # numbers or dates in a text column (CSV writes their text), or a NUL the server refuses
            )
        data = np.array([v.encode("utf-8") for v in levels] + [b""], dtype=object)
        return _Column(data, codes=np.where(codes < 0, len(levels), codes))
    return None


def _present(series: pd.Series) -> np.ndarray:
    return series.notna().to_numpy()
