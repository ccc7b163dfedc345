"""Date columns: read all one way or refused, never day-first for some values and month-first for others."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from persona_pipeline.core.dates import SAMPLE_SIZE, SUPPORTED_FORMATS, read_dates
from persona_pipeline.errors import LoadError

BLANKS = ["", "   ", None, np.nan, "NaN", "null", "None", "NA", "n/a", "<NA>", "NaT"]


def _dates(*texts: str) -> list[pd.Timestamp]:
    return [pd.Timestamp(t) for t in texts]


def _zoned(fmt: str) -> bool:
    return "%z" in fmt or fmt.endswith("Z")


def _at_precision(moment: dt.datetime, fmt: str) -> dt.datetime:
    """The datetime as far as `fmt` shows it: what a reader of the rendered text can get back."""
    if "%f" not in fmt:
        moment = moment.replace(microsecond=0)
    if "%S" not in fmt:
        moment = moment.replace(second=0)
    if "%H" not in fmt:
        moment = moment.replace(hour=0, minute=0)
    return moment


@st.composite
def rendered_columns(draw: st.DrawFn) -> tuple[str, list[object], list[pd.Timestamp | None]]:
    """A format, a column of datetimes rendered in it with blanks mixed in, and the expected readings."""
    fmt = draw(st.sampled_from(SUPPORTED_FORMATS))
    moments = draw(
        st.lists(
            st.datetimes(min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(2060, 12, 31, 23, 59, 59)),
            min_size=1,
            max_size=25,
        )
    )
    cells: list[object] = []
    expected: list[pd.Timestamp | None] = []
    for moment in moments:
        moment = _at_precision(moment, fmt)
        if _zoned(fmt):
            minutes = 0 if fmt.endswith("Z") else draw(st.integers(-12 * 4, 14 * 4)) * 15
            moment = moment.replace(tzinfo=dt.timezone(dt.timedelta(minutes=minutes)))
            expected.append(pd.Timestamp(moment.astimezone(dt.UTC).replace(tzinfo=None)))
        else:
            expected.append(pd.Timestamp(moment))
        cells.append(moment.strftime(fmt))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(cells)))
        cells.insert(at, draw(st.sampled_from(BLANKS)))
        expected.insert(at, None)
    return fmt, cells, expected


def _assert_read_back(cells: list[object], expected: list[pd.Timestamp | None], fmt: str | None) -> None:
    reading = read_dates(pd.Series(cells, dtype=object), "when", fmt)
    assert not reading.unread.any()
    assert reading.values.dtype == "datetime64[ns]"
    for got, want in zip(reading.values, expected, strict=True):
        assert pd.isna(got) if want is None else got == want


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rendered_columns())
def test_a_column_is_read_all_one_way_or_refused(column: tuple[str, list[object], list]) -> None:
    fmt, cells, expected = column
    _assert_read_back(cells, expected, fmt)  # the format it was written in always reads it back
    try:
        _assert_read_back(cells, expected, None)
    except LoadError as refusal:
        assert "'when'" in str(refusal) and "--date-format" in str(refusal)


@pytest.mark.parametrize("fmt", SUPPORTED_FORMATS)
def test_every_supported_format_is_inferred_once_a_value_settles_it(fmt: str) -> None:
    """Day 21 settles day against month; September against Sep; the time and offset are read too."""
    moments = [dt.datetime(2012, 9, 4, 10, 30, 15, 123456), dt.datetime(2013, 8, 21, 23, 5, 59, 7)]
    zone = dt.timezone(dt.timedelta(hours=-5) if "%z" in fmt else dt.timedelta(0))
    cells = [_at_precision(m, fmt).replace(tzinfo=zone).strftime(fmt) for m in moments]
    expected = [
        pd.Timestamp(_at_precision(m, fmt).replace(tzinfo=zone).astimezone(dt.UTC).replace(tzinfo=None))
        for m in moments
    ]
    _assert_read_back(cells, expected, None)


def test_one_day_above_12_makes_the_whole_column_day_first() -> None:
    reading = read_dates(pd.Series(["04-09-2012", "05-06-2013", "21-08-2013"]), "Dt_Customer")
    assert reading.format == "%d-%m-%Y"
    assert reading.values.tolist() == _dates("2012-09-04", "2013-06-05", "2013-08-21")
    assert not reading.unread.any()


def test_one_day_above_12_in_second_place_makes_the_whole_column_month_first() -> None:
    reading = read_dates(pd.Series(["04-09-2012", "05-06-2013", "08-21-2013"]), "Dt_Customer")
    assert reading.format == "%m-%d-%Y"
    assert reading.values.tolist() == _dates("2012-04-09", "2013-05-06", "2013-08-21")


def test_an_iso_column_is_read_and_offsets_become_utc() -> None:
    assert read_dates(pd.Series(["2012-09-04", "2013-08-21"]), "d").values.tolist() == _dates(
        "2012-09-04", "2013-08-21"
    )
    zoned = read_dates(pd.Series(["2012-09-04T10:00:00Z", "2012-09-04T10:00:00+02:00"]), "d")
    assert zoned.values.tolist() == _dates("2012-09-04 10:00", "2012-09-04 08:00")


def test_a_column_mixing_day_first_and_month_first_is_refused() -> None:
    with pytest.raises(LoadError, match="Dt_Customer") as refusal:
        read_dates(pd.Series(["13-01-2012", "01-13-2012", "01-01-2012"]), "Dt_Customer")
    message = str(refusal.value)
    assert "--date-format '%d-%m-%Y'" in message and "'%m-%d-%Y'" in message and "\n" not in message


def test_a_column_no_value_settles_is_refused_with_both_readings() -> None:
    with pytest.raises(LoadError) as refusal:
        read_dates(
            pd.Series(["04-09-2012", "05-06-2013", "04-09-2012"]), "Dt_Customer", trait="customer_since"
        )
    assert str(refusal.value) == (
        "column 'Dt_Customer': dates such as '04-09-2012' read as 4 September 2012 (%d-%m-%Y) "
        "or as 9 April 2012 (%m-%d-%Y), and no value settles it; pass --date-format '%d-%m-%Y' (or '%m-%d-%Y'), "
        "or give trait customer_since `format: '%d-%m-%Y'` in the traits file"
    )
    # a contact's created time (the file's 'signup') has no trait to carry a format: --date-format alone
    with pytest.raises(LoadError) as refusal:
        read_dates(pd.Series(["04-09-2012", "05-06-2013"]), "signup")
    assert str(refusal.value).startswith("column 'signup': ") and "format:" not in str(refusal.value)


def test_the_settling_value_counts_even_when_the_sample_misses_it() -> None:
    """Candidates are screened on a sample, but the survivors read every value."""
    ambiguous = [
        f"{d:02d}-{m:02d}-{y}" for y in range(1990, 2020) for m in range(1, 13) for d in range(1, 13)
    ]
    sampled = set(np.linspace(0, len(ambiguous), SAMPLE_SIZE).astype(np.int64).tolist())
    unsampled = next(i for i in range(len(ambiguous) // 2, len(ambiguous)) if i not in sampled)
    column = ambiguous[:unsampled] + ["21-08-2013"] + ambiguous[unsampled:]
    reading = read_dates(pd.Series(column), "d")
    assert reading.format == "%d-%m-%Y"
    assert reading.values.iloc[0] == pd.Timestamp("1990-01-01")
    assert reading.values.iloc[1] == pd.Timestamp("1990-01-02")  # "02-01-1990", day first


def test_blanks_stay_nat_and_are_not_unread() -> None:
    column = pd.Series(["04-09-2012", *BLANKS, "21-08-2013"], index=range(100, 100 + len(BLANKS) + 2))
    reading = read_dates(column, "d")
    assert reading.format == "%d-%m-%Y"
    assert reading.values.index.equals(column.index)
    assert reading.values.isna().tolist() == [False] + [True] * len(BLANKS) + [False]
    assert not reading.unread.any()
    assert reading.unread.shape == (len(column),)


def test_a_given_format_is_obeyed_and_other_values_are_unread() -> None:
    reading = read_dates(pd.Series(["04-09-2012", "21-08-2013", "2012-09-04", ""]), "d", "%m-%d-%Y")
    assert reading.format == "%m-%d-%Y"
    assert reading.values.iloc[0] == pd.Timestamp("2012-04-09")
    assert reading.unread.tolist() == [False, True, True, False]


def test_a_given_format_that_is_not_a_format_is_refused() -> None:
    with pytest.raises(LoadError, match="--date-format %Q"):
        read_dates(pd.Series(["04-09-2012"]), "d", "%Q")


def test_garbage_in_a_day_first_column_is_unread_and_the_rest_read_day_first() -> None:
    column = pd.Series(["04-09-2012", "soon", "21-08-2013", "31-02-2013", "2012-09-04", "05-06-2013"])
    reading = read_dates(column, "d")
    assert reading.format == "%d-%m-%Y"
    assert reading.unread.tolist() == [False, True, False, True, True, False]
    read = reading.values[~reading.unread]
    assert read.tolist() == _dates("2012-09-04", "2013-08-21", "2013-06-05")


def test_datetimes_pass_through_as_naive_utc_nanoseconds() -> None:
    naive = pd.Series(pd.to_datetime(["2012-09-04 10:00", None]).as_unit("us"))
    reading = read_dates(naive, "d")
    assert reading.format is None and reading.values.dtype == "datetime64[ns]"
    assert reading.values.iloc[0] == pd.Timestamp("2012-09-04 10:00") and pd.isna(reading.values.iloc[1])
    assert not reading.unread.any()
    zoned = pd.Series(pd.to_datetime(["2012-09-04T10:00:00+02:00"]))
    assert read_dates(zoned, "d").values.tolist() == _dates("2012-09-04 08:00")


def test_a_column_of_no_dates_has_no_format_and_every_value_unread() -> None:
    reading = read_dates(pd.Series(["gold", "", "silver", None]), "tier")
    assert reading.format is None
    assert reading.unread.tolist() == [True, False, True, False]
    assert reading.values.isna().all()


def test_whole_numbers_read_with_blanks_are_still_dates() -> None:
    reading = read_dates(pd.Series([20120904.0, np.nan, 20131231.0]), "d")
    assert reading.format == "%Y%m%d"
    assert reading.values.tolist()[::2] == _dates("2012-09-04", "2013-12-31")
