"""The forecaster's learnt cycle (``--cycle``, CycleNet's residual cycle forecasting): the phase of each
row, the arithmetic against a cycle-free network, and the phase surviving reloads, cut tables and streams."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

import lstmkit
from lstmkit.data.timeseries import Series
from lstmkit.io import to_jsonable
from lstmkit.tasks.forecast.baselines import RidgeLinear, windows
from lstmkit.tasks.forecast.config import ForecastConfig
from lstmkit.tasks.forecast.data import cycle_phase
from lstmkit.tasks.forecast.model import ForecastNet


def _hourly(n=400, seed=0, start="2024-01-01 05:00"):
    """An hourly load with a daily shape that no sine of the lookback explains: a peak at 18:00."""
    rng = np.random.default_rng(seed)
    t = pd.date_range(start, periods=n, freq="h")
    peak = np.exp(-0.5 * ((t.hour.to_numpy() - 18) / 1.5) ** 2)
    return pd.DataFrame({"date": t, "load": 10 + 4 * peak + 0.3 * rng.normal(size=n)})


SMALL = dict(target=["load"], lookback=48, horizon=12, hidden_size=16, patch=4, batch_size=64, lr=3e-3, epochs=4)


def _series(time=None, n=30):
    return Series("", np.zeros((n, 1), np.float32), np.zeros((n, 0), np.float32), time)


def test_phase_counts_steps_since_1970_with_a_regular_time_column_else_rows():
    hours = pd.date_range("2024-01-01 05:00", periods=30, freq="h").to_numpy()
    phase = cycle_phase(_series(hours), 24)
    assert phase[0] == 5 and phase[19] == 0 and phase.dtype == np.float32  # the hour of the day
    assert np.array_equal(cycle_phase(_series(hours[7:], 23), 24), phase[7:])  # a later table agrees
    quarter = pd.date_range("2024-01-01 00:15", periods=30, freq="15min").to_numpy()
    assert cycle_phase(_series(quarter), 96)[:3].tolist() == [1, 2, 3]
    days = pd.bdate_range("2024-01-01", periods=30).to_numpy()  # trading days: weekends missing
    assert cycle_phase(_series(days), 5).tolist() == [i % 5 for i in range(30)]  # rows
    assert cycle_phase(_series(None), 7, first_row=12)[:3].tolist() == [5, 6, 0]


@pytest.mark.parametrize("features", ["S", "M"])
def test_the_cycle_is_taken_out_of_the_lookback_and_put_back_into_the_forecast(features):
    """CycleNet's residual: with no per-window norm and no linear map, the network with cycle Q forecasts
    x as the same network without a cycle forecasts x - Q[phase], plus Q at the forecast rows."""
    C = 1 if features == "S" else 3
    cfg = ForecastConfig().build(lookback=12, horizon=4, hidden_size=8, patch=3, norm="none", linear_weight=0.0)
    dims = {"n_past": C, "n_target": C, "n_future": 0}
    torch.manual_seed(0)
    plain = ForecastNet(cfg, dims).eval()
    cyc = ForecastNet(cfg, {**dims, "cycle": 6}).eval()
    missing = cyc.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert set(missing) == {"members.0.cycle", "lin_phase"} and plain.members[0].cycle is None
    q = torch.randn(6, C)  # (W, C)
    with torch.no_grad():
        cyc.members[0].cycle.copy_(q)
    past = torch.randn(5, 12, C)  # (B, L, C)
    phase = (torch.randint(0, 6, (5, 1)) + torch.arange(16)) % 6  # (B, L+H): consecutive rows
    got = cyc(past, phase[..., None].float())  # the phase: the last future channel
    want = plain(past - q[phase[:, :12]], torch.zeros(5, 16, 0)) + q[phase[:, 12:]][..., None]
    assert torch.allclose(got, want, atol=1e-6)
    assert not torch.allclose(got, plain(past, torch.zeros(5, 16, 0)), atol=1e-3)


def test_the_linear_map_learns_a_bias_per_phase_that_a_short_lookback_cannot_see():
    """A pure cycle of 12 steps seen through 4: relative to the last value, the next steps depend only on
    the phase, which the map with a bias per phase fits exactly and the plain map cannot; the network's
    linear_forecast applies the fitted rows as the design matrix does."""
    W, L, H = 12, 4, 3
    q = np.random.default_rng(0).normal(size=W)
    z = q[np.arange(600) % W][:, None]  # (N, 1)
    phase = (np.arange(600) % W).astype(np.float32)  # (N,)
    origins = np.arange(L, 500)
    plain = RidgeLinear.fit([(z, origins)], L, H, alpha=1e-9, relative=True)
    cyc = RidgeLinear.fit([(z, origins)], L, H, alpha=1e-9, relative=True, phases=[phase], period=W)
    test = np.arange(500, 600 - H)
    truth = windows(z, test, 0, H)[..., 0]  # (n, H)
    past = windows(z, test, -L, 0)[..., 0]  # (n, L)
    hot = np.eye(W)[phase[test].astype(int)]
    X = np.concatenate([past - past[:, -1:], np.ones((len(test), 1)), hot], axis=1)  # (n, L + 1 + W)
    got = X @ cyc.weight + past[:, -1:]
    assert np.abs(got - truth).max() < 1e-4
    Xp = np.concatenate([past - past[:, -1:], np.ones((len(test), 1))], axis=1)
    assert np.abs(Xp @ plain.weight + past[:, -1:] - truth).max() > 0.1
    cfg = ForecastConfig().build(lookback=L, horizon=H, hidden_size=4, patch=1)
    net = ForecastNet(cfg, {"n_past": 1, "n_target": 1, "n_future": 0, "cycle": W})
    w = torch.as_tensor(cyc.weight, dtype=torch.float32)[None]  # (1, L + 1 + W, H)
    net.start_linear(w[:, :L].transpose(1, 2), w[:, L], w[:, L + 1 :])
    rows = test[:, None] + np.arange(-L, H)  # (n, L+H)
    fut = torch.from_numpy(phase[rows])[..., None]  # (n, L+H, 1): the phase channel
    lin = net.linear_forecast(torch.as_tensor(past, dtype=torch.float32)[..., None], fut)  # (n, H, 1)
    assert torch.allclose(lin[..., 0], torch.as_tensor(got, dtype=torch.float32), atol=1e-4)
    with pytest.raises(ValueError, match="phase"):
        net.linear_forecast(torch.zeros(2, L, 1))


@pytest.fixture(scope="module")
def hourly_csv(tmp_path_factory):
    p = tmp_path_factory.mktemp("cyc") / "hourly.csv"
    _hourly().to_csv(p, index=False)
    return p


@pytest.fixture(scope="module")
def cycled(hourly_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("cycm") / "m"
    lstmkit.train("forecast", hourly_csv, out=out, quiet=True, time_column="date", **SMALL)
    return out


def test_the_default_learns_a_cycle_of_one_day_and_reloads_to_the_same_forecast(cycled, hourly_csv, tmp_path):
    saved = json.loads((cycled / "config.json").read_text())
    assert saved["config"]["cycle"] is True and saved["config"]["season"] == 24 and saved["dims"]["cycle"] == 24
    p = lstmkit.load(cycled)
    q = p.model.members[0].cycle.detach()[:, 0]  # (24,)
    assert float(q.abs().max()) > 0  # trained away from its zero start
    assert float(p.model.lin_phase.abs().max()) > 0  # the linear map's bias per phase
    df = pd.read_csv(hourly_csv)
    assert np.array_equal(p.predict(df)["load"].to_numpy(), lstmkit.load(cycled).predict(df)["load"].to_numpy())
    off = tmp_path / "off"
    lstmkit.train("forecast", hourly_csv, out=off, quiet=True, time_column="date", cycle=False, **SMALL)
    plain = lstmkit.load(off)
    assert plain.dims["cycle"] == 0 and plain.model.members[0].cycle is None
    assert not any("cycle" in k or "phase" in k for k in plain.model.state_dict())


def test_the_phase_comes_from_the_time_column_not_the_row_number(cycled, hourly_csv):
    """The same rows read from a table cut 7 rows later forecast the same: the phase follows the clock."""
    p, df = lstmkit.load(cycled), pd.read_csv(hourly_csv)
    whole, cut = p.predict(df), p.predict(df.iloc[7:])
    assert np.allclose(whole["load"].to_numpy(), cut["load"].to_numpy(), atol=1e-5)
    moved = df.assign(date=pd.to_datetime(df["date"]) + pd.Timedelta(hours=5))  # the same values 5 h later
    assert not np.allclose(whole["load"].to_numpy(), p.predict(moved)["load"].to_numpy(), atol=1e-3)


def test_without_a_time_column_the_stream_keeps_counting_rows_it_dropped(hourly_csv, tmp_path):
    """Rows are the clock without a time column: a stream whose buffer has dropped rows forecasts what
    predict forecasts from the whole table."""
    df = pd.read_csv(hourly_csv).drop(columns="date")
    out = tmp_path / "rows"
    lstmkit.train("forecast", df, out=out, quiet=True, season=24, **SMALL)
    p = lstmkit.load(out)
    assert p.dims["cycle"] == 24
    rows = json.loads(df.iloc[:150].to_json(orient="records"))
    stream = p.stream(keep=50)  # not a whole number of days: the buffer's first row moves through the cycle
    for r in rows:
        got = stream.step(r)
    assert stream.dropped[""] == 100
    assert got == to_jsonable(p.predict(df.iloc[:150]))
