"""The forecast task end to end on small synthetic series: train, reload, evaluate, predict, backtest, CLI."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from lstmkit.cli.main import main
from lstmkit.tasks.forecast import ForecastConfig, load_predictor, train
from lstmkit.tasks.forecast_model import ForecastNet, NetConfig
from lstmkit.train import TrainConfig


def _series(n=400, seed=0, start="2024-01-01"):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    daily = np.sin(2 * np.pi * t / 24)
    return pd.DataFrame(
        {
            "date": pd.date_range(start, periods=n, freq="h"),
            "load": 10 + 3 * daily + 0.2 * rng.normal(size=n),
            "temp": 20 + 2 * np.roll(daily, 3) + 0.1 * rng.normal(size=n),
        }
    )


@pytest.fixture(scope="module")
def csv(tmp_path_factory):
    p = tmp_path_factory.mktemp("fc") / "data.csv"
    _series().to_csv(p, index=False)
    return p


def _tc(**kw):
    return TrainConfig(**{"epochs": 3, "batch_size": 64, "lr": 3e-3, "quiet": True, "device": "cpu", **kw})


def _cfg(**kw):
    return ForecastConfig(
        **{
            "target": ["load"],
            "time_column": "date",
            "lookback": 48,
            "horizon": 12,
            "hidden_size": 16,
            "patch": 4,
            **kw,
        }
    )


@pytest.fixture(scope="module")
def trained(csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("model")
    metrics = train(csv, _cfg(calendar=True), _tc(), out)
    return out, metrics


def test_train_writes_folder_and_beats_naive(trained):
    out, metrics = trained
    for name in ("config.json", "model.safetensors", "scaler.json", "metrics.json", "history.csv", "loss.png"):
        assert (out / name).is_file(), name
    test = metrics["test"]
    assert test["windows"] == 80 - 12 + 1  # every test window, stride 1
    assert set(test["baselines"]) == {"last_value", "linear", "seasonal_naive"}
    assert test["baselines"]["seasonal_naive"]["season"] == 24
    assert test["mse"] < test["baselines"]["last_value"]["mse"]  # a daily cycle: the LSTM learns it
    assert test["mse_raw"] > 0 and test["mape"] > 0


def test_reload_gives_identical_predictions(trained, csv):
    out, metrics = trained
    p = load_predictor(out)
    again = p.evaluate(csv, split="test")
    assert again["mse"] == metrics["test"]["mse"] and again["mae_raw"] == metrics["test"]["mae_raw"]
    assert p.predict(csv).equals(load_predictor(out).predict(csv))


def test_predict_continues_the_timestamps_and_plots(trained, csv, tmp_path):
    out, _ = trained
    df = load_predictor(out).predict(csv, out=tmp_path / "p.csv", plot=tmp_path / "p.png")
    assert list(df.columns) == ["date", "load"] and len(df) == 12
    assert df["date"].iloc[0] == pd.Timestamp("2024-01-01") + pd.Timedelta(hours=400)
    assert (tmp_path / "p.png").stat().st_size > 1000
    assert pd.read_csv(tmp_path / "p.csv").shape == (12, 2)


def test_backtest_csv_and_plot(trained, csv, tmp_path):
    out, _ = trained
    df, m = load_predictor(out).backtest(csv, split="test", out=tmp_path / "b.csv", plot=tmp_path / "b.png")
    assert m["forecasts"] == len(range(0, 69, 12)) and len(df) == 12 * m["forecasts"]
    assert {"origin", "date", "h", "load", "load_pred"} <= set(df.columns)
    assert (tmp_path / "b.png").is_file()


def test_same_seed_same_metrics(csv, tmp_path):
    a = train(csv, _cfg(), _tc(epochs=1), tmp_path / "a")
    b = train(csv, _cfg(), _tc(epochs=1), tmp_path / "b")
    assert a["test"]["mse"] == b["test"]["mse"]


def test_seq2seq_quantiles_multivariate_series(tmp_path):
    df = pd.concat([_series(200, 1).assign(site="x"), _series(200, 2).assign(site="y")])
    p = tmp_path / "multi.csv"
    df.to_csv(p, index=False)
    cfg = _cfg(features="M", series_column="site", decoder="seq2seq", quantiles=[0.9, 0.1, 0.5], lookback=24, horizon=6)
    m = train(p, cfg, _tc(epochs=1), tmp_path / "m")
    assert 0.0 <= m["test"]["interval_coverage"] <= 1.0
    pred = load_predictor(tmp_path / "m").predict(p)
    assert list(pred.columns) == [
        "site",
        "date",
        "load",
        "load_q0.1",
        "load_q0.5",
        "load_q0.9",
        "temp",
        "temp_q0.1",
        "temp_q0.5",
        "temp_q0.9",
    ]
    assert len(pred) == 12 and set(pred["site"]) == {"x", "y"}


def test_model_shapes_for_every_option():
    for decoder in ("direct", "seq2seq"):
        for ci in (True, False):
            net = ForecastNet(
                NetConfig(
                    n_past=3,
                    n_target=2,
                    n_future=2,
                    lookback=10,
                    horizon=4,
                    hidden_size=8,
                    decoder=decoder,
                    n_quantiles=3,
                    channel_independent=ci,
                    patch=3,
                    bidirectional=decoder == "direct",
                )
            )
            past, fut, y = torch.randn(5, 10, 3), torch.randn(5, 14, 2), torch.randn(5, 4, 2)
            assert net(past, fut).shape == (5, 4, 2, 3)
            assert net.train()(past, fut, y).shape == (5, 4, 2, 3)


def test_trace_gates_and_inspect(trained, csv, tmp_path):
    from lstmkit.cli.inspect import inspect_model

    out, _ = trained
    p = load_predictor(out)
    gates = p.trace_gates(p.inspect_sample(None))  # the window saved in the folder
    assert len(gates) == 1 and gates[0].f.shape == (1, 48 // 4, 16)
    assert float(gates[0].f.min()) >= 0.0 and float(gates[0].f.max()) <= 1.0
    same = p.trace_gates(p.inspect_sample(str(csv)))  # the same last window, read from the file
    assert torch.allclose(same[0].c, gates[0].c, atol=1e-5)
    assert inspect_model(str(out), data=str(csv), out=str(tmp_path / "g.png")).stat().st_size > 1000


def test_cli_train_evaluate_json_and_errors(csv, tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(
        [
            "forecast",
            "train",
            "--data",
            str(csv),
            "--target",
            "load",
            "--time-column",
            "date",
            "--lookback",
            "24",
            "--horizon",
            "6",
            "--hidden-size",
            "8",
            "--epochs",
            "1",
            "--quiet",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    capsys.readouterr()
    assert main(["forecast", "evaluate", "--model", str(out), "--data", str(csv), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert {"mse", "mae", "mse_raw", "mae_raw", "mape", "baselines"} <= set(metrics)
    assert main(["forecast", "train", "--data", str(csv), "--target", "OT", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: data.csv: column 'OT' not found") and "\n" not in err
    assert main(["forecast", "evaluate", "--model", str(tmp_path / "none"), "--data", str(csv)]) == 2


def test_future_covariates_predict_reads_the_future_rows(tmp_path):
    df = _series(200)
    df.iloc[:194].to_csv(tmp_path / "hist.csv", index=False)
    df.loc[194:, "load"] = np.nan  # the last H rows: known future temp, empty target
    df.to_csv(tmp_path / "with_future.csv", index=False)
    cfg = _cfg(future_covariates=["temp"], calendar=True, lookback=24, horizon=6)
    train(tmp_path / "hist.csv", cfg, _tc(epochs=1), tmp_path / "m")
    p = load_predictor(tmp_path / "m")
    pred = p.predict(tmp_path / "with_future.csv")
    assert list(pred["date"]) == list(df["date"].iloc[194:]) and np.isfinite(pred["load"]).all()
    with pytest.raises(Exception, match="leave load empty"):
        p.predict(tmp_path / "hist.csv")  # no future rows given


def test_bad_inputs_exit_2(tmp_path, capsys):
    df = _series(120)
    df.loc[[30, 40], "load"] = np.nan
    df.to_csv(tmp_path / "nan.csv", index=False)
    base = [
        "forecast",
        "train",
        "--data",
        str(tmp_path / "nan.csv"),
        "--target",
        "load",
        "--time-column",
        "date",
        "--lookback",
        "24",
        "--horizon",
        "6",
        "--hidden-size",
        "8",
        "--epochs",
        "1",
        "--quiet",
        "--out",
        str(tmp_path / "o"),
    ]
    assert main(base) == 2
    assert "2 missing values (first: column 'load' line 32)" in capsys.readouterr().err
    assert main(base + ["--fill", "interpolate"]) == 0
    assert main(base + ["--fill", "ffill", "--lookback", "200"]) == 2
    assert "fewer than lookback + horizon = 206" in capsys.readouterr().err
