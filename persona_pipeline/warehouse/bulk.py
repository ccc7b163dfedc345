"""Fast bulk reads and writes: COPY on PostgreSQL (about 17x faster than row inserts), executemany on SQLite."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from persona_pipeline.warehouse import pgbinary
from persona_pipeline.warehouse.engine import SQLITE_DATETIME, is_postgres, quote, sqlite_params


def read_frame(
    engine: Engine,
    sql: str,
    params: Mapping[str, Any] | None = None,
    categorical: bool = False,
    split_on: str | None = None,
) -> pd.DataFrame:
    """Run a SELECT and return its rows; PostgreSQL streams CSV through COPY and parses it with Arrow.

    With `categorical`, text columns come back as pandas categories: a fraction of the memory, and they
    pickle, group and compare many times faster than Python strings. With `split_on` (an integer column the
    query orders by, from contacts), PostgreSQL reads two halves of its range on two connections at once:
    the server's text output is most of a large read, and this way both cores do it.
    """
    if split_on is not None and is_postgres(engine):
        return _read_halves(engine, sql, dict(params or {}), categorical, split_on)
    if not is_postgres(engine):
        with engine.connect() as conn:
            frame = _sqlite_frame(conn, sql, dict(params or {}))
        if categorical:  # only columns that hold text alone: SQLite lets a column mix numbers and text
            for name in frame.columns:
                if pd.api.types.infer_dtype(frame[name], skipna=True) == "string":
                    frame[name] = frame[name].astype("category")
        return frame
    table = _copy_out(engine, sql, params, categorical)
    return pd.DataFrame() if table is None else _arrow_to_pandas(table, categorical)


def _sqlite_frame(conn: sa.Connection, sql: str, params: dict[str, Any]) -> pd.DataFrame:
    """Rows straight from the sqlite3 cursor: SQLAlchemy's Row objects and pandas' generic reader took 40% of
    a 223,000-order read (BENCHMARKS.md, 50,000-contact build). The SQL's `:name` parameters are sqlite3's own
    named style; the values (numbers, text, datetimes) bind as SQLAlchemy would bind them."""
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.execute(sql, sqlite_params(params))  # the raw cursor skips the engine's hook
        columns = [column[0] for column in cursor.description]
        return pd.DataFrame.from_records(cursor.fetchall(), columns=columns, coerce_float=True)
    finally:
        cursor.close()


def _read_halves(
    engine: Engine, sql: str, params: dict[str, Any], categorical: bool, key: str
) -> pd.DataFrame:
    column = quote(engine, key)
    with engine.connect() as conn:
        low, high = conn.execute(sa.text(f"SELECT MIN({column}), MAX({column}) FROM contacts")).one()  # noqa: S608
    if low is None:
        return read_frame(engine, sql, params, categorical)
    middle = (low + high + 1) // 2
    bounded = params | {"split_at": middle}
    halves = [
        (f"SELECT * FROM ({sql}) AS half WHERE {column} {test} :split_at ORDER BY {column}", bounded)  # noqa: S608
        for test in ("<", ">=")
    ]
    with ThreadPoolExecutor(2) as pool:
        tables = list(pool.map(lambda half: _copy_out(engine, *half, categorical), halves))
    present = [t for t in tables if t is not None]
    if not present:
        return pd.DataFrame()
    try:
        return _arrow_to_pandas(pa.concat_tables(present, promote_options="permissive"), categorical)
    except pa.ArrowTypeError:  # the halves' text parsed to different types (say, a word in a number column)
        return read_frame(engine, sql, params, categorical)


def _copy_out(
    engine: Engine, sql: str, params: Mapping[str, Any] | None, categorical: bool = False
) -> pa.Table | None:
    """COPY a query's rows out of PostgreSQL as CSV and parse them with Arrow (None: no columns came back).

    Columns the server types as text are parsed as text whatever they hold, so a zip code '02134' or a
    label '7' comes back as written rather than as a number. With `categorical`, they are dictionary-encoded
    as they are parsed, which costs half as much as categorizing the strings afterwards.
    """
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        bound = cursor.mogrify(_pyformat(sql), dict(params or {})).decode() if params else sql
        cursor.execute(f"SELECT * FROM ({bound}) AS result_shape LIMIT 0")  # noqa: S608 - planned, not run
        text_type = pa.dictionary(pa.int32(), pa.string()) if categorical else pa.string()
        column_types = {
            column.name: text_type
            for column in cursor.description or ()
            if column.type_code not in _INFERRED_TYPES
        }
        buffer = io.BytesIO()
        cursor.copy_expert(f"COPY ({bound}) TO STDOUT WITH (FORMAT csv, HEADER true)", buffer)
        cursor.close()
        raw.commit()
    finally:
        raw.close()
    buffer.seek(0)
    if buffer.getbuffer().nbytes == 0:
        return None
    return pacsv.read_csv(
        buffer,
        read_options=pacsv.ReadOptions(block_size=1 << 24),
        # a NULL in a one-column result is an empty line: a row, not a blank to skip
        parse_options=pacsv.ParseOptions(ignore_empty_lines=False),
        convert_options=pacsv.ConvertOptions(
            true_values=["t"],
            false_values=["f"],
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            column_types=column_types,
        ),
    )


# PostgreSQL type OIDs whose CSV text Arrow's inference reads right: numbers, booleans, dates and times.
# Every other column (text, varchar, uuid, json, enums) is read as text.
_INFERRED_TYPES = frozenset({16, 20, 21, 23, 26, 700, 701, 1700, 1082, 1083, 1114, 1184})


def _arrow_to_pandas(table: pa.Table, categorical: bool) -> pd.DataFrame:
    """Booleans stay nullable booleans; text becomes categories or Python strings with None for NULL."""
    frame = table.to_pandas(
        types_mapper={pa.bool_(): pd.BooleanDtype()}.get, strings_to_categorical=categorical
    )
    if not categorical:
        for name, field in zip(table.column_names, table.schema, strict=True):
            if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
                frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
    return frame


def _pyformat(sql: str) -> str:
    """SQLAlchemy-style :name parameters to psycopg2's %(name)s, leaving '::' casts alone."""
    escaped = sql.replace("%", "%%")
    return re.sub(r"(?<![:\w]):([A-Za-z_]\w*)", r"%(\1)s", escaped)


def _arrow_for_copy(frame: pd.DataFrame) -> pa.Table:
    """The frame as Arrow for a CSV COPY: Arrow's writer is several times faster than DataFrame.to_csv."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    columns = []
    for column in table.columns:
        if pa.types.is_dictionary(column.type):
            column = column.cast(pa.string())
        elif pa.types.is_timestamp(column.type):
            column = column.cast(pa.timestamp("us"))
        columns.append(column)
    return pa.table(columns, names=table.column_names)


def _python_rows(frame: pd.DataFrame) -> Iterable[tuple[Any, ...]]:
    """Rows with None for every kind of missing value and plain Python scalars, as DB-API drivers want."""
    converted = {}
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_datetime64_any_dtype(column):  # SQLite compares the text: SQLAlchemy's format
            values = column.dt.strftime(SQLITE_DATETIME).astype(object)
        else:
            values = column.astype(object)
        converted[name] = values.where(column.notna(), None).tolist()
    return zip(*converted.values(), strict=True)


def write_frame(conn: Connection, table: str, frame: pd.DataFrame) -> int:
    """Append rows to an existing table inside the caller's transaction; returns the number written."""
    if frame.empty:
        return 0
    columns = ", ".join(quote(conn.engine, c) for c in frame.columns)
    target = quote(conn.engine, table)
    if conn.dialect.name == "postgresql":
        for name in frame.columns:  # refused before either COPY path is chosen
            if pd.api.types.is_float_dtype(frame[name]):
                if np.isinf(frame[name].to_numpy(dtype="float64", na_value=np.nan)).any():
                    raise ValueError(
                        f"column {name!r} holds an infinite value; the warehouse cannot store it"
                    )
        cursor = conn.connection.dbapi_connection.cursor()
        encoded = pgbinary.encode(frame, _column_types(cursor, target))
        if encoded is not None:
            cursor.copy_expert(f"COPY {target} ({columns}) FROM STDIN WITH (FORMAT binary)", _Chunks(encoded))
        else:
            buffer = io.BytesIO()
            pacsv.write_csv(_arrow_for_copy(frame), buffer, pacsv.WriteOptions(include_header=False))
            buffer.seek(0)
            cursor.copy_expert(f"COPY {target} ({columns}) FROM STDIN WITH (FORMAT csv)", buffer)
        cursor.close()
        return len(frame)
    placeholders = ", ".join("?" for _ in frame.columns)
    if not conn.in_transaction():  # rows written through the driver's cursor still go in one transaction
        conn.begin()
    cursor = conn.connection.dbapi_connection.cursor()
    insert = f"INSERT INTO {target} ({columns}) VALUES ({placeholders})"  # noqa: S608 - identifiers quoted
    cursor.executemany(insert, _python_rows(frame))
    cursor.close()
    return len(frame)


class _Chunks:
    """A file-like view of byte chunks for copy_expert, which sends whatever each read() returns."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)

    def read(self, size: int = -1) -> bytes:  # noqa: ARG002 - a whole chunk, whatever size is asked
        return next(self._chunks, b"")


def _column_types(cursor: Any, quoted_table: str) -> dict[str, str]:
    """Column name to type (pg_type.typname) of a table as the caller's search path resolves it."""
    cursor.execute(
        "SELECT a.attname, t.typname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid"
        " WHERE a.attrelid = CAST(%s AS regclass) AND a.attnum > 0 AND NOT a.attisdropped",
        (quoted_table,),
    )
    return dict(cursor.fetchall())


def stream_csv(engine: Engine, sql: str, out: Any, params: Mapping[str, Any] | None = None) -> None:
    """Write a query's rows as CSV to a binary file without holding them in memory (COPY, or a server cursor)."""
    if is_postgres(engine):
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            bound = cursor.mogrify(_pyformat(sql), dict(params or {})).decode() if params else sql
            cursor.copy_expert(f"COPY ({bound}) TO STDOUT WITH (FORMAT csv, HEADER true)", out)
            cursor.close()
        finally:
            raw.close()
        return
    text = io.TextIOWrapper(out, encoding="utf-8", newline="")
    try:
        with engine.connect() as conn:
            result = conn.execution_options(stream_results=True).execute(sa.text(sql), dict(params or {}))
            writer = csv.writer(text)
            writer.writerow(result.keys())
            for chunk in result.partitions(50_000):
                writer.writerows(chunk)
    finally:
        text.flush()
        text.detach()
