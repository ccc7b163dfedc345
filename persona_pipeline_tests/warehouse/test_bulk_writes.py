"""Bulk writes store exactly the frame they are given: binary COPY on PostgreSQL (CSV where it cannot), rows on SQLite."""

from __future__ import annotations

import datetime as dt
import uuid

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from persona_pipeline.warehouse import pgbinary
from persona_pipeline.warehouse.bulk import read_frame, write_frame

COLUMNS = [
    sa.Column("row_id", sa.Integer, nullable=False),
    sa.Column("big", sa.BigInteger),
    sa.Column("ratio", sa.Float),
    sa.Column("flag", sa.Boolean),
    sa.Column("label", sa.Text),
    sa.Column("level", sa.String(50)),
    sa.Column("stamp", sa.DateTime),
    sa.Column("day", sa.Date),
]
POSTGRES_TYPES = {
    "row_id": "int4",
    "big": "int8",
    "ratio": "float8",
    "flag": "bool",
    "label": "text",
    "level": "varchar",
    "stamp": "timestamp",
    "day": "date",
}

# text the warehouse stores verbatim: no NUL (PostgreSQL refuses it), no lone surrogates (not UTF-8)
texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20)
stamps = st.datetimes(dt.datetime(1900, 1, 1), dt.datetime(2200, 1, 1)).map(
    lambda t: t.replace(microsecond=0)
)


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(0, 25))
    rows = st.lists
    # within 2**53: pandas reads an integer column holding NULLs from SQLite as floats
    big = draw(rows(st.none() | st.integers(-(2**53), 2**53), min_size=n, max_size=n))
    ratio = draw(
        rows(st.none() | st.floats(allow_infinity=False, allow_nan=False, width=64), min_size=n, max_size=n)
    )
    flag = draw(rows(st.none() | st.booleans(), min_size=n, max_size=n))
    label = draw(rows(st.none() | texts, min_size=n, max_size=n))
    levels = draw(st.lists(texts, min_size=1, max_size=4, unique=True))
    level = draw(rows(st.none() | st.sampled_from(levels), min_size=n, max_size=n))
    stamp = draw(rows(st.none() | stamps, min_size=n, max_size=n))
    day = draw(rows(st.none() | st.dates(dt.date(1900, 1, 1), dt.date(2200, 1, 1)), min_size=n, max_size=n))
    return pd.DataFrame(
        {
            "row_id": np.arange(n, dtype=np.int32),
            "big": pd.array(big, dtype="Int64"),
            "ratio": pd.array([np.nan if v is None else v for v in ratio], dtype="float64"),
            "flag": pd.array(flag, dtype="boolean"),
            "label": pd.Series(label, dtype=object),
            "level": pd.Categorical(level, categories=levels),
            "stamp": pd.to_datetime(pd.Series(stamp, dtype=object)).astype("datetime64[us]"),
            "day": pd.to_datetime(pd.Series(day, dtype=object)).astype("datetime64[us]"),
        }
    )


def _table(engine: Engine) -> str:
    name = f"bulk_{uuid.uuid4().hex[:10]}"
    sa.Table(name, sa.MetaData(), *[c.copy() for c in COLUMNS]).create(engine)
    return name


def _same(stored: pd.DataFrame, frame: pd.DataFrame) -> None:
    assert len(stored) == len(frame)

    def plain(values: pd.Series) -> list:
        return [None if pd.isna(v) else v for v in values.astype(object)]

    assert stored["row_id"].tolist() == frame["row_id"].tolist()
    assert plain(stored["big"]) == plain(frame["big"])
    assert plain(stored["ratio"]) == plain(frame["ratio"])
    assert [None if v is None else bool(v) for v in plain(stored["flag"])] == plain(frame["flag"])
    assert plain(stored["label"]) == plain(frame["label"])
    assert plain(stored["level"]) == plain(frame["level"])
    stored_stamps = (
        pd.to_datetime(stored["stamp"].astype(object), format="mixed") if len(stored) else stored["stamp"]
    )
    assert plain(stored_stamps) == plain(frame["stamp"])
    stored_days = (
        pd.to_datetime(stored["day"].astype(object), format="mixed") if len(stored) else stored["day"]
    )
    assert [None if v is None else v.date() for v in plain(stored_days)] == [
        None if v is None else v.date() for v in plain(frame["day"])
    ]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frame=frames(), rows_per_chunk=st.integers(1, 8))
def test_a_written_frame_reads_back_exactly(
    warehouse: Engine, monkeypatch: pytest.MonkeyPatch, frame: pd.DataFrame, rows_per_chunk: int
) -> None:
    monkeypatch.setattr(pgbinary, "ROWS_PER_CHUNK", rows_per_chunk)  # streams of many chunks, each its shapes
    if warehouse.dialect.name == "postgresql":  # the binary path is the one under test, not the CSV fallback
        assert pgbinary.encode(frame, POSTGRES_TYPES) is not None
    table = _table(warehouse)
    with warehouse.begin() as conn:
        assert write_frame(conn, table, frame) == len(frame)
    _same(read_frame(warehouse, f'SELECT * FROM "{table}" ORDER BY row_id'), frame)  # noqa: S608


@pytest.mark.parametrize(
    ("column", "values", "kind"),
    [
        ("ratio", pd.Series([1.5, 2.5]), "numeric"),  # no exact binary form here: the server converts text
        ("big", pd.Series([1.0, 2.0]), "int8"),  # floats for an integer column
        ("label", pd.Series([1, "two"], dtype=object), "text"),  # numbers in a text column
        ("big", pd.Series([2**40, 1]), "int4"),  # out of the column's range: the server must say so
        ("big", pd.Series([2**63, 1], dtype="uint64"), "int8"),
        ("stamp", pd.Series(pd.to_datetime(["2026-01-01"]).tz_localize("UTC")), "timestamp"),
    ],
)
def test_values_without_an_exact_binary_form_fall_back_to_csv(
    column: str, values: pd.Series, kind: str
) -> None:
    assert pgbinary.encode(pd.DataFrame({column: values}), {column: kind}) is None


def test_the_csv_fallback_stores_what_binary_cannot_encode(warehouse: Engine) -> None:
    table = _table(warehouse)
    frame = pd.DataFrame({"row_id": [0, 1], "big": [3.0, 4.0], "label": ["seven", "eight"]})
    if warehouse.dialect.name == "postgresql":
        assert pgbinary.encode(frame, POSTGRES_TYPES) is None
    with warehouse.begin() as conn:
        write_frame(conn, table, frame)
    stored = read_frame(warehouse, f'SELECT row_id, big, label FROM "{table}" ORDER BY row_id')  # noqa: S608
    assert stored["big"].tolist() == [3, 4]
    assert stored["label"].tolist() == ["seven", "eight"]


def test_an_infinite_value_is_refused_with_its_column_and_nothing_is_written(warehouse: Engine) -> None:
    table = _table(warehouse)
    frame = pd.DataFrame({"row_id": [0, 1], "ratio": [1.0, np.inf]})
    if warehouse.dialect.name == "postgresql":
        with pytest.raises(ValueError, match="column 'ratio' holds an infinite value"):
            with warehouse.begin() as conn:
                write_frame(conn, table, frame)
        assert read_frame(warehouse, f'SELECT * FROM "{table}"').empty  # noqa: S608
    else:  # SQLite stores infinity as a float, as it is
        with warehouse.begin() as conn:
            write_frame(conn, table, frame)
        assert np.isinf(read_frame(warehouse, f'SELECT ratio FROM "{table}" WHERE row_id = 1')["ratio"]).all()  # noqa: S608


@pytest.mark.parametrize("categorical", [False, True])
def test_text_that_looks_like_numbers_reads_back_as_text(warehouse: Engine, categorical: bool) -> None:
    table = _table(warehouse)
    frame = pd.DataFrame({"row_id": [0, 1, 2], "label": ["02134", "7", None], "level": ["1.50", "t", "1e3"]})
    with warehouse.begin() as conn:
        write_frame(conn, table, frame)
    stored = read_frame(
        warehouse,
        f'SELECT row_id, label, level, big FROM "{table}" ORDER BY row_id',  # noqa: S608
        categorical=categorical,
    )
    assert [None if pd.isna(v) else v for v in stored["label"].astype(object)] == ["02134", "7", None]
    assert stored["level"].astype(object).tolist() == ["1.50", "t", "1e3"]
    assert pd.api.types.is_integer_dtype(stored["row_id"])  # numbers are still numbers
    if categorical:
        assert isinstance(stored["label"].dtype, pd.CategoricalDtype)
