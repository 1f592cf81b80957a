"""Readers, errors, splits, windows, scalers, calendar features and baselines of lstmkit.data.timeseries."""

import numpy as np
import pandas as pd
import pytest
from conftest import data_dir

from lstmkit.data.timeseries import (
    ColumnSpec,
    Standardizer,
    calendar_features,
    future_times,
    load_table,
    parse_split,
    split_bounds,
    window_origins,
)
from lstmkit.errors import DataError
from lstmkit.tasks.forecast import baselines as base

ETT = data_dir("ett") / "ETTh1.csv"


def _frame(n=50, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "date": pd.date_range("2024-01-01", periods=n, freq="h").astype(str),
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
            "y": np.arange(n, dtype=float),
        }
    )


def _write(tmp_path, df, name="d.csv"):
    p = tmp_path / name
    df.to_csv(p, index=False)
    return p


def test_reads_columns_and_features_modes(tmp_path):
    p = _write(tmp_path, _frame())
    s = load_table(p, ColumnSpec(target=["y"], time_column="date"))
    assert s.past_columns == ["y"] and s.n_target == 1 and s.series[0].past.shape == (50, 1)
    m = load_table(p, ColumnSpec(target=["y"], features="M", time_column="date"))
    assert m.past_columns == ["y", "a", "b"] and m.n_target == 3
    ms = load_table(p, ColumnSpec(target=["y"], features="MS", time_column="date"))
    assert ms.past_columns == ["y", "a", "b"] and ms.n_target == 1
    cov = load_table(p, ColumnSpec(target=["y"], covariates=["b"], future_covariates=["a"], time_column="date"))
    assert cov.past_columns == ["y", "b"] and cov.future_columns == ["a"]
    assert cov.series[0].future.shape == (50, 1)


def test_default_target_is_the_last_numeric_column_and_dataframes_read_like_files(tmp_path):
    df = _frame()
    p = _write(tmp_path, df)
    s = load_table(p, ColumnSpec(target=[], time_column="date"))
    assert s.past_columns == ["y"] and s.target_columns == ["y"]
    assert load_table(p, ColumnSpec(target=[], covariates=["y"])).target_columns == ["b"]  # covariates are inputs
    m = load_table(p, ColumnSpec(target=[], features="M", time_column="date"))
    assert m.past_columns == ["y", "a", "b"]  # the default target first
    frame = load_table(df, ColumnSpec(target=[], time_column="date"))
    assert np.array_equal(frame.series[0].past, s.series[0].past)
    with pytest.raises(DataError, match="no numeric column to forecast"):
        load_table(df[["date"]], ColumnSpec(target=[]))
    with pytest.raises(DataError, match=r"DataFrame: column 'OT' not found"):
        load_table(df, ColumnSpec(target=["OT"]))


def test_parquet_and_series_column(tmp_path):
    df = pd.concat([_frame(20).assign(id="u"), _frame(30).assign(id="v")])
    p = tmp_path / "d.parquet"
    df.to_parquet(p)
    s = load_table(p, ColumnSpec(target=["y"], time_column="date", series_column="id"))
    assert [x.id for x in s.series] == ["u", "v"] and [len(x.past) for x in s.series] == [20, 30]


@pytest.mark.parametrize(
    "content,fragment",
    [
        ("", "empty"),
        ("date,y\n2024-01-01,1\n2024-01-02,2,3\n", "line 3"),
        ("date,y\n", "no data rows"),
    ],
)
def test_bad_files(tmp_path, content, fragment):
    p = tmp_path / "bad.csv"
    p.write_text(content)
    with pytest.raises(DataError, match=fragment):
        load_table(p, ColumnSpec(target=["y"]))


def test_missing_file_and_unknown_column(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_table(tmp_path / "nope.csv", ColumnSpec(target=["y"]))
    p = _write(tmp_path, _frame())
    with pytest.raises(DataError, match=r"column 'OT' not found \(columns: date, a, b, y\)"):
        load_table(p, ColumnSpec(target=["OT"]))


def test_non_numeric_value_names_column_and_line(tmp_path):
    df = _frame().astype({"y": object})
    df.loc[7, "y"] = "oops"
    with pytest.raises(DataError, match=r"column 'y' line 9: non-numeric value 'oops'"):
        load_table(_write(tmp_path, df), ColumnSpec(target=["y"]))


def test_missing_values_reported_and_filled(tmp_path):
    df = _frame()
    df.loc[[5, 9], "y"] = np.nan
    p = _write(tmp_path, df)
    with pytest.raises(DataError, match=r"2 missing values \(first: column 'y' line 7\)"):
        load_table(p, ColumnSpec(target=["y"]))
    ff = load_table(p, ColumnSpec(target=["y"], fill="ffill")).series[0].past[:, 0]
    assert ff[5] == 4.0 and ff[9] == 8.0
    it = load_table(p, ColumnSpec(target=["y"], fill="interpolate")).series[0].past[:, 0]
    assert it[5] == 5.0 and it[9] == 9.0
    assert len(load_table(p, ColumnSpec(target=["y"], fill="drop")).series[0].past) == 48


def test_time_checks(tmp_path):
    df = _frame()
    dup = df.copy()
    dup.loc[10, "date"] = dup.loc[9, "date"]
    with pytest.raises(DataError, match="duplicated timestamp 2024-01-01 09:00:00 \\(line 12\\)"):
        load_table(_write(tmp_path, dup), ColumnSpec(target=["y"], time_column="date"))
    shuffled = df.sample(frac=1.0, random_state=0).drop(index=[20, 21])
    s = load_table(_write(tmp_path, shuffled, "s.csv"), ColumnSpec(target=["y"], time_column="date"))
    assert np.all(np.diff(s.series[0].past[:, 0]) > 0)  # sorted back into time order
    assert any("not in time order" in n for n in s.notes) and any("gaps" in n for n in s.notes)


def test_too_short_series(tmp_path):
    with pytest.raises(DataError, match="fewer than lookback \\+ horizon = 60"):
        load_table(_write(tmp_path, _frame()), ColumnSpec(target=["y"]), min_length=60)


def test_splits_and_informer_windows():
    assert parse_split("8640,2880,2880") == (8640.0, 2880.0, 2880.0)
    assert split_bounds(17420, (8640, 2880, 2880)) == {
        "train": (0, 8640),
        "valid": (8640, 11520),
        "test": (11520, 14400),
    }
    assert split_bounds(100, (0.7, 0.1, 0.2)) == {"train": (0, 70), "valid": (70, 80), "test": (80, 100)}
    with pytest.raises(DataError, match="--split"):
        parse_split("0.7,0.3")
    with pytest.raises(DataError, match="needs 300 rows"):
        split_bounds(100, (100, 100, 100))
    o = window_origins(17420, 11520, 14400, 96, 24)
    # every test window: forecast rows inside the test split, lookback reaching into valid
    assert o[0] == 11520 and o[-1] + 24 == 14400 and len(o) == 2857
    assert window_origins(17420, 0, 8640, 96, 24)[0] == 96


def test_standardizer_roundtrip_and_json():
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(100, 2)).astype(np.float32)
    sc = Standardizer.fit(["a", "b"], {"s": x})
    z = sc.transform("s", x)
    assert np.allclose(z.mean(0), 0, atol=1e-5) and np.allclose(z.std(0), 1, atol=1e-4)
    back = Standardizer.from_json(sc.to_json())
    assert np.allclose(back.inverse("s", z), x, atol=1e-5)
    assert np.allclose(back.inverse("s", z[:, :1], slice(0, 1)), x[:, :1], atol=1e-5)
    with pytest.raises(DataError, match="not seen in training"):
        sc.transform("other", x)


def test_calendar_features_and_future_times():
    t = pd.date_range("2024-01-01", periods=48, freq="h").to_numpy()
    cal = calendar_features(t)
    assert cal.shape == (48, 8) and np.abs(cal).max() <= 1.0
    assert np.allclose(cal[0], cal[24], atol=1e-6) is False  # day of year differs
    assert np.allclose(cal[0, 2:4], cal[24, 2:4])  # same hour of day
    ft = future_times(t, 3)
    assert list(pd.DatetimeIndex(ft)) == list(pd.date_range("2024-01-03", periods=3, freq="h"))


def test_baselines_on_a_sine():
    x = np.sin(0.3 * np.arange(400))[:, None]  # (N, 1)
    o = np.arange(50, 390)
    true = base.windows(x, o, 0, 5)
    assert np.allclose(base.last_value(x, o, 5)[:, 0], x[o - 1])
    period = base.seasonal_naive(np.tile([1.0, 2.0, 3.0], 200)[:, None], np.arange(10, 20), 5, 3)
    assert np.allclose(period[:, :, 0], np.tile([1.0, 2.0, 3.0], 200)[np.arange(10, 20)[:, None] + np.arange(5)])
    lin = base.RidgeLinear.fit([(x, np.arange(50, 300))], 20, 5, alpha=1e-8)
    assert ((lin.predict(x, o) - true) ** 2).mean() < 1e-6  # a sine obeys a linear recurrence
    m = base.finish(base.error_sums(true + 0.1, true, true + 0.1, true))
    assert m["mse"] == pytest.approx(0.01) and m["mae"] == pytest.approx(0.1)


@pytest.mark.real_data("ett")
def test_linear_baseline_reproduces_the_published_ett_numbers():
    s = load_table(ETT, ColumnSpec(target=["OT"], time_column="date"))
    z = Standardizer.fit(["OT"], {"": s.series[0].past[:8640]}).transform("", s.series[0].past)
    tr, te = window_origins(len(z), 0, 8640, 96, 24), window_origins(len(z), 11520, 14400, 96, 24)
    lin = base.RidgeLinear.fit([(z, tr)], 96, 24)
    true = base.windows(z, te, 0, 24)
    assert ((lin.predict(z, te) - true) ** 2).mean() == pytest.approx(0.0276, abs=5e-4)
    assert ((base.last_value(z, te, 24) - true) ** 2).mean() == pytest.approx(0.0343, abs=5e-4)
