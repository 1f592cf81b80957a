"""The fast path of load_table (``simple_series``) against its general twin (``fast=False``).

The fast path takes the simple tables a served or streamed forecast sends; every other table must
fall through to the general path (None), so that its checks and messages stay the only ones.
"""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from lstmkit.data import timeseries as ts
from lstmkit.data.timeseries import ColumnSpec, future_times, load_table, resolve_columns, simple_series
from lstmkit.errors import DataError


def _table(n=12, sites=("x",), start="2024-01-05 22:00:00", freq="h", fmt=None, seed=0):
    rng = np.random.default_rng(seed)
    parts = []
    for s in sites:
        t = pd.date_range(start, periods=n, freq=freq)
        parts.append(
            pd.DataFrame(
                {
                    "site": s,
                    "date": [x.strftime(fmt) for x in t] if fmt else t.astype(str),
                    "temp": rng.normal(size=n).round(3),
                    "load": rng.integers(0, 20, size=n),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


SPEC = ColumnSpec(target=["load"], covariates=["temp"], time_column="date", series_column="site")


def _same(a, b):
    assert a.past_columns == b.past_columns and a.future_columns == b.future_columns
    assert a.n_target == b.n_target and a.notes == b.notes
    assert len(a.series) == len(b.series)
    for s, r in zip(a.series, b.series):
        assert s.id == r.id
        for x, y in ((s.past, r.past), (s.future, r.future)):
            assert x.dtype == y.dtype and x.shape == y.shape
            np.testing.assert_array_equal(x, y)
        if r.time is None:
            assert s.time is None
        else:
            assert s.time.dtype == r.time.dtype
            np.testing.assert_array_equal(s.time, r.time)


def _fast(df, spec=SPEC, min_length=1):
    cols = resolve_columns(df, spec, "DataFrame")
    return simple_series(df.copy(), spec, cols, min_length)


SIMPLE = {
    "served table": (_table(), SPEC),
    "three sites": (_table(sites=("a", "b", "c")), SPEC),
    "T separator, minutes": (_table(fmt="%Y-%m-%dT%H:%M"), SPEC),
    "fractions of a second": (_table(freq="250ms", fmt="%Y-%m-%d %H:%M:%S.%f"), SPEC),
    "dates only": (_table(freq="D", fmt="%Y-%m-%d"), SPEC),
    "datetime64 column": (_table().assign(date=lambda d: pd.to_datetime(d["date"])), SPEC),
    "calendar features": (_table(), dataclasses.replace(SPEC, calendar=True)),
    "no time, no series": (_table().drop(columns=["date", "site"]), ColumnSpec(target=["load"], covariates=["temp"])),
    "future covariate": (_table(), dataclasses.replace(SPEC, covariates=[], future_covariates=["temp"])),
    "one row": (_table(n=1), SPEC),
}


@pytest.mark.parametrize("case", list(SIMPLE))
def test_simple_tables_take_the_fast_path_and_match_the_general_one(case):
    df, spec = SIMPLE[case]
    fast = _fast(df, spec)
    assert fast is not None, "a simple table must take the fast path"
    _same(fast, load_table(df.copy(), spec, fast=False))
    _same(load_table(df.copy(), spec), load_table(df.copy(), spec, fast=False))


def _edit(df, col, i, value):
    df = df.copy()
    df[col] = df[col].astype(object)
    df.loc[i, col] = value
    return df


OTHER = {
    "NaN": _table().assign(temp=lambda d: d["temp"].where(d.index != 3)),
    "infinity": _table().assign(temp=lambda d: d["temp"].where(d.index != 3, np.inf)),
    "beyond float32": _table().assign(temp=lambda d: d["temp"].where(d.index != 3, 1e39)),
    "a number as text": _edit(_table(), "temp", 2, "1.5"),
    "a word": _edit(_table(), "temp", 2, "warm"),
    "booleans": _table().assign(temp=lambda d: d.index % 2 == 0),
    "nullable integers with a gap": _table().assign(load=lambda d: pd.array([None, *d["load"][1:]], dtype="Int64")),
    "rows out of order": _table().iloc[::-1].reset_index(drop=True),
    "a gap": _table().drop(index=5).reset_index(drop=True),
    "a duplicated time": _edit(_table(), "date", 4, _table()["date"][3]),
    "sites out of order": _table(sites=("b", "a")),
    "sites interleaved": _table(sites=("a", "b")).sort_values("date", kind="stable").reset_index(drop=True),
    "an empty site": _edit(_table(), "site", 0, " "),
    "a numeric site id": _table().assign(site=7),
    "a zone": _table().assign(date=lambda d: d["date"] + "+01:00"),
    "a day-first date": _table(fmt="%d/%m/%Y %H:%M"),
    "a 13th month": _edit(_table(), "date", 11, "2024-13-06 09:00:00"),
    "nanoseconds": _table(freq="h", fmt="%Y-%m-%d %H:%M:%S.000000001"),
    "an empty time": _edit(_table(), "date", 0, None),
}


@pytest.mark.parametrize("case", list(OTHER))
def test_other_tables_fall_through_to_the_general_path(case):
    df = OTHER[case]
    assert _fast(df) is None
    try:
        want = load_table(df.copy(), SPEC, fast=False)
    except DataError as e:
        with pytest.raises(DataError, match="^" + __import__("re").escape(str(e)) + "$"):
            load_table(df.copy(), SPEC)
    else:
        _same(load_table(df.copy(), SPEC), want)


def test_too_short_falls_through_and_the_general_path_names_the_need():
    df = _table(n=4)
    assert _fast(df, min_length=5) is None
    with pytest.raises(DataError, match="has 4 rows, fewer than lookback \\+ horizon = 5"):
        load_table(df, SPEC, min_length=5)


def test_the_fast_path_is_what_load_table_runs(monkeypatch):
    calls = []
    monkeypatch.setattr(ts, "check_numeric", lambda *a, **k: calls.append(a) or pytest.fail("general path ran"))
    sset = load_table(_table(), SPEC)
    assert [s.id for s in sset.series] == ["x"] and not calls


@pytest.mark.parametrize("freq", ["h", "15min", "D"])
def test_future_times_fast_step_matches_the_median_step(freq):
    t = pd.date_range("2024-03-30", periods=20, freq=freq).to_numpy().astype("datetime64[us]")
    got = future_times(t, 5)
    step = pd.Series(t).diff().median()
    want = np.asarray([pd.Timestamp(t[-1]) + step * (k + 1) for k in range(5)], dtype="datetime64[ns]")
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("order", ["as is", "reversed", "shifted index"])
def test_load_table_leaves_the_callers_frame_as_it_was(fast, order):
    df = _table(sites=("a", "b"))
    df = {"as is": df, "reversed": df.iloc[::-1], "shifted index": df.set_axis(df.index + 5)}[order]
    before = df.copy()
    load_table(df, SPEC, fast=fast)
    pd.testing.assert_frame_equal(df, before)


def test_future_times_of_times_with_a_zone_take_the_pandas_path():
    t = pd.Series(pd.date_range("2024-01-01", periods=4, freq="h", tz="Europe/Berlin")).to_numpy()  # Timestamps
    got = future_times(t, 2)
    assert got.dtype == np.dtype("datetime64[ns]")
    np.testing.assert_array_equal(got, np.array(["2024-01-01T03:00", "2024-01-01T04:00"], dtype="datetime64[ns]"))
