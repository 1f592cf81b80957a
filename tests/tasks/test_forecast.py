"""The forecast task end to end on small synthetic series: train, reload, evaluate, predict, backtest, CLI."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

import lstmkit
from lstmkit.cli.main import main
from lstmkit.errors import LstmkitError
from lstmkit.tasks.forecast.config import ForecastConfig
from lstmkit.tasks.forecast.model import ForecastNet


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


TINY = dict(time_column="date", lookback=48, horizon=12, hidden_size=16, patch=4, batch_size=64, lr=3e-3, device="cpu")


def fit(data, out=None, epochs=3, **settings):
    return lstmkit.train(
        "forecast", data, out=out, quiet=True, **{"target": ["load"], **TINY, "epochs": epochs, **settings}
    )


@pytest.fixture(scope="module")
def trained(csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "m"
    return out, fit(csv, out, calendar=True)


def test_train_writes_folder_and_beats_naive(trained):
    out, result = trained
    for name in (
        "config.json",
        "model.safetensors",
        "scaler.json",
        "columns.json",
        "sample.json",
        "metrics.json",
        "history.csv",
        "loss.png",
    ):
        assert (out / name).is_file(), name
    test = result.metrics["test"]
    assert test["windows"] == 80 - 12 + 1  # every test window, stride 1
    assert set(test["baselines"]) == {"last_value", "linear", "seasonal_naive"}
    assert test["baselines"]["seasonal_naive"]["season"] == 24
    assert test["mse"] < test["baselines"]["last_value"]["mse"]  # a daily cycle: the LSTM learns it
    assert test["mse_raw"] > 0 and test["mape"] > 0
    assert result.metrics["valid"]["part"] == "valid" and result.metrics["valid"]["windows"] == 40 - 12 + 1
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["test"] == test and saved["training"]["best_epoch"] == result.best_epoch >= 1


def test_automatic_settings_are_resolved_and_saved(csv, tmp_path):
    """target [] -> the last numeric column, patch 0 -> lookback // 4, season 0 -> one day of steps."""
    res = lstmkit.train(
        "forecast",
        csv,
        out=tmp_path / "m",
        quiet=True,
        epochs=1,
        lookback=48,
        horizon=12,
        hidden_size=4,
        time_column="date",
        device="cpu",
    )
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())["config"]
    assert (cfg["target"], cfg["patch"], cfg["season"]) == (["temp"], 12, 24)
    assert res.predictor.config.target == ["temp"] and lstmkit.default_config("forecast")["target"] == []
    assert list(res.predictor.predict(csv).columns) == ["date", "temp"]


def test_reload_gives_identical_predictions(trained, csv):
    out, result = trained
    p = lstmkit.load(out)
    again = p.evaluate(csv, part="test")
    assert again["mse"] == result.metrics["test"]["mse"] and again["mae_raw"] == result.metrics["test"]["mae_raw"]
    assert p.predict(csv).equals(result.predictor.predict(csv))


def test_predict_takes_a_path_a_str_a_dataframe_or_a_list(trained, csv, tmp_path):
    p = lstmkit.load(trained[0])
    df = p.predict(csv, plot=str(tmp_path / "p.png"))
    assert list(df.columns) == ["date", "load"] and len(df) == 12
    assert df["date"].iloc[0] == pd.Timestamp("2024-01-01") + pd.Timedelta(hours=400)  # continues the timestamps
    assert (tmp_path / "p.png").stat().st_size > 1000
    table = pd.read_csv(csv)
    assert p.predict(table).equals(df) and p.predict(str(csv)).equals(df)
    shorter = p.predict(table.iloc[:300])  # another history: another forecast, one per table, in order
    both = p.predict([table.iloc[:300], table])
    assert len(both) == 2 and both[0].equals(shorter) and both[1].equals(df) and not shorter.equals(df)
    empty = p.predict(table.iloc[:0])
    assert len(empty) == 0 and list(empty.columns) == ["date", "load"]
    with pytest.raises(LstmkitError, match="column 'load' not found"):
        p.predict(table[["date", "temp"]].iloc[:0])


def test_cli_predict_csv_json_and_output(trained, csv, tmp_path, capsys):
    out = str(trained[0])
    expected = lstmkit.load(out).predict(csv)
    assert main(["forecast", "predict", "--model", out, "--data", str(csv)]) == 0
    printed = pd.read_csv(__import__("io").StringIO(capsys.readouterr().out), parse_dates=["date"])
    assert printed.shape == (12, 2) and np.allclose(printed["load"], expected["load"], atol=1e-4)
    assert main(["forecast", "predict", "--model", out, "--data", str(csv), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 1 and len(rows[0]) == 12  # one output (a forecast table) per input table
    assert rows[0][0]["date"] == "2024-01-17T16:00:00" and rows[0][0]["load"] == pytest.approx(expected["load"][0])
    assert main(["forecast", "predict", "--model", out, "--data", str(csv), "--output", str(tmp_path / "p.csv")]) == 0
    assert pd.read_csv(tmp_path / "p.csv").shape == (12, 2) and "wrote" in capsys.readouterr().err


def test_backtest_python_and_cli(trained, csv, tmp_path, capsys):
    out, _ = trained
    df, m = lstmkit.load(out).backtest(csv, part="test", plot=str(tmp_path / "b.png"))
    assert m["forecasts"] == len(range(0, 69, 12)) and len(df) == 12 * m["forecasts"]
    assert {"origin", "date", "h", "load", "load_pred"} <= set(df.columns)
    assert (tmp_path / "b.png").is_file()
    assert df["h"].tolist()[:13] == [*range(1, 13), 1]  # origins every horizon (12 steps) by default
    assert df["origin"].iloc[12] - df["origin"].iloc[0] == pd.Timedelta(hours=12)
    csv_out = tmp_path / "bt.csv"
    argv = ["forecast", "backtest", "--model", str(out), "--data", str(csv), "--output", str(csv_out)]
    argv += ["--stride", "1", "--plot", "none"]
    assert main(argv) == 0
    assert "69 forecasts over the test part" in capsys.readouterr().err
    assert len(pd.read_csv(csv_out)) == 69 * 12


def test_same_seed_same_metrics(csv):
    a, b = fit(csv, epochs=1), fit(csv, epochs=1)
    assert a.metrics["test"]["mse"] == b.metrics["test"]["mse"]


def test_seq2seq_quantiles_multivariate_series_and_interval_coverage(tmp_path):
    df = pd.concat([_series(200, 1).assign(site="x"), _series(200, 2).assign(site="y")])
    p = tmp_path / "multi.csv"
    df.to_csv(p, index=False)
    res = fit(
        p,
        tmp_path / "m",
        epochs=1,
        features="M",
        series_column="site",
        decoder="seq2seq",
        quantiles=[0.9, 0.1, 0.5],
        lookback=24,
        horizon=6,
    )
    assert res.predictor.config.quantiles == [0.1, 0.5, 0.9]  # kept ascending
    pred = lstmkit.load(tmp_path / "m").predict(p)
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
    assert (pred["load"] == pred["load_q0.5"]).all()  # the point forecast is the median
    # coverage = share of true values inside [q0.1, q0.9] over every test window: count it by hand
    bt, _ = res.predictor.backtest(p, part="test", stride=1)
    inside = np.concatenate(
        [((bt[c] >= bt[f"{c}_q0.1"]) & (bt[c] <= bt[f"{c}_q0.9"])).to_numpy() for c in ("load", "temp")]
    )
    assert len(inside) == 2 * 35 * 6 * 2  # series x windows x steps x targets
    assert res.metrics["test"]["interval_coverage"] == pytest.approx(inside.mean(), abs=1.5 / len(inside))


def test_model_shapes_for_every_option():
    dims = {"n_past": 3, "n_target": 2, "n_future": 2}
    for decoder in ("direct", "seq2seq"):
        for ci in (True, False):
            cfg = ForecastConfig().build(
                lookback=10,
                horizon=4,
                hidden_size=8,
                decoder=decoder,
                channel_independent=ci,
                quantiles=[0.1, 0.5, 0.9],
                patch=3,
                bidirectional=decoder == "direct",
                num_layers=2,
                highway=ci,
            )
            net = ForecastNet(cfg, dims)
            past, fut, y = torch.randn(5, 10, 3), torch.randn(5, 14, 2), torch.randn(5, 4, 2)
            assert net.eval()(past, fut).shape == (5, 4, 2, 3)
            assert net.train()(past, fut, y).shape == (5, 4, 2, 3)


def test_dropout_acts_on_the_encoder_input():
    """--dropout is the stack's dropout on its input too (one layer: no between-layer dropout)."""
    cfg = ForecastConfig().build(lookback=8, horizon=2, hidden_size=8, patch=1, dropout=0.5)
    net = ForecastNet(cfg, {"n_past": 1, "n_target": 1, "n_future": 0})
    seen = []
    net.encoder.register_forward_pre_hook(lambda m, args: seen.append(args[0].clone()))
    past, fut = torch.randn(64, 8, 1) + 5.0, torch.zeros(64, 10, 0)
    net.eval()(past, fut)
    net.train()(past, fut)
    assert (seen[0] != 0).all()  # eval: the input as is
    dropped = (seen[1] == 0).float().mean().item()
    assert 0.4 < dropped < 0.6 and torch.allclose(seen[1][seen[1] != 0], 2 * seen[0][seen[1] != 0])


def test_trace_gates_are_the_encoders_and_inspect_draws_them(trained, csv, tmp_path, capsys):
    out, _ = trained
    p = lstmkit.load(out)
    raw = pd.read_csv(csv)
    sample = p.inspect_sample(None)  # saved in the folder: the training table's last lookback window
    assert np.allclose(sample.past[:, 0], raw["load"].to_numpy()[-48:], atol=1e-4)
    shifted = p.inspect_sample(raw.iloc[:-5])  # the last window of a shorter table
    assert np.allclose(shifted.past[:, 0], raw["load"].to_numpy()[-53:-5], atol=1e-4)
    gates = p.trace_gates(sample)
    assert len(gates) == 1 and gates[0].f.shape == (1, 48 // 4, 16)
    assert float(gates[0].f.min()) >= 0.0 and float(gates[0].f.max()) <= 1.0
    # the last step's h = o * tanh(c) is the encoder's final state on the window, normalised by hand
    scaler = json.loads((out / "scaler.json").read_text())
    z = (sample.past - np.float32(scaler["mean"][""][0])) / np.float32(scaler["std"][""][0])  # (L, 1)
    x = torch.from_numpy(z)[None]
    x = (x - x.mean(1, keepdim=True)) / x.std(1, keepdim=True, unbiased=False)  # revin
    fut = torch.cat([torch.from_numpy(sample.future), torch.zeros(12, 8)])[None]  # calendar (1, L+H, 8)
    _, (h_n, _) = p.model.encode(x, fut)
    g = gates[0]
    assert torch.allclose(g.o[0, -1] * torch.tanh(g.c[0, -1]), h_n[-1, 0], atol=1e-5)
    other = p.trace_gates(shifted)
    assert not torch.allclose(other[0].c, g.c, atol=1e-3)  # another window, other gates
    labels = p.step_labels(sample)
    assert len(labels) == 12 and labels[0] == "t-48..t-45" and labels[-1] == "t-4..t-1"
    png = tmp_path / "g.png"
    assert main(["inspect", "--model", str(out), "--data", str(csv), "--output", str(png)]) == 0
    assert png.stat().st_size > 1000 and str(png) in capsys.readouterr().out


def test_cli_train_evaluate_json_and_errors(csv, tmp_path, capsys):
    out = tmp_path / "cli"
    flags = "--target load --time-column date --lookback 24 --horizon 6 --hidden-size 8 --epochs 1 --split 280,40,80"
    argv = ["forecast", "train", "--data", str(csv), *flags.split(), "--quiet", "--out", str(out), "--test", str(csv)]
    argv += ["--json"]
    assert main(argv) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["test"]["windows"] == 80 - 6 + 1 and metrics["training"]["epochs_run"] == 1
    assert json.loads((out / "config.json").read_text())["config"]["split"] == [280, 40, 80]
    assert main(["forecast", "evaluate", "--model", str(out), "--data", str(csv), "--json", "--part", "valid"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated == json.loads(json.dumps(lstmkit.load(out).evaluate(csv, part="valid")))
    assert {"mse", "mae", "mse_raw", "mae_raw", "mape", "baselines"} <= set(evaluated)
    assert evaluated["part"] == "valid" and evaluated["windows"] == 40 - 6 + 1
    assert main(["forecast", "evaluate", "--model", str(out), "--data", str(csv), "--season", "12"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("test part, 75 windows") and "seasonal_naive" in text
    bad = [
        (["--target", "OT"], "error: data.csv: column 'OT' not found"),
        (["--valid", str(csv)], "--valid: forecast takes its validation rows from --split"),
        (["--split", "0.7,0.3"], "split (--split) must be three numbers"),
        (["--split", "100.5,20,20"], "row counts must be whole numbers"),
        (["--quantiles", "0.5,0.5"], "quantiles (--quantiles) must be different"),
        (["--quantiles", "0.5,1.5"], "must be < 1"),
        (["--calendar"], "calendar (--calendar) needs --time-column"),
    ]
    for args, msg in bad:
        assert main(["forecast", "train", "--data", str(csv), "--out", str(tmp_path / "x"), *args]) == 2
        err = capsys.readouterr().err.strip()
        assert msg in err and "\n" not in err and "Traceback" not in err, (args, err)
    assert main(["forecast", "evaluate", "--model", str(tmp_path / "none"), "--data", str(csv)]) == 2
    with pytest.raises(LstmkitError, match="--valid: forecast"):
        lstmkit.train("forecast", csv, csv)


def test_future_covariates_predict_reads_the_future_rows(tmp_path):
    df = _series(200)
    df.iloc[:194].to_csv(tmp_path / "hist.csv", index=False)
    df.loc[194:, "load"] = np.nan  # the last H rows: known future temp, empty target
    df.to_csv(tmp_path / "with_future.csv", index=False)
    fit(
        tmp_path / "hist.csv",
        tmp_path / "m",
        epochs=1,
        future_covariates=["temp"],
        calendar=True,
        lookback=24,
        horizon=6,
    )
    p = lstmkit.load(tmp_path / "m")
    pred = p.predict(tmp_path / "with_future.csv")
    assert list(pred["date"]) == list(df["date"].iloc[194:]) and np.isfinite(pred["load"]).all()
    with pytest.raises(LstmkitError, match="leave load empty"):
        p.predict(tmp_path / "hist.csv")  # no future rows given


def test_bad_inputs_exit_2(tmp_path, capsys):
    df = _series(120)
    df.loc[[30, 40], "load"] = np.nan
    df.to_csv(tmp_path / "nan.csv", index=False)
    flags = "--target load --time-column date --lookback 24 --horizon 6 --hidden-size 8 --epochs 1 --quiet"
    base = ["forecast", "train", "--data", str(tmp_path / "nan.csv"), *flags.split(), "--out", str(tmp_path / "o")]
    assert main(base) == 2
    assert "2 missing values (first: column 'load' line 32)" in capsys.readouterr().err
    assert main(base + ["--fill", "interpolate"]) == 0
    assert main(base + ["--fill", "ffill", "--lookback", "200", "--overwrite"]) == 2
    assert "fewer than lookback + horizon = 206" in capsys.readouterr().err
    assert main(base + ["--fill", "ffill", "--lookback", "90", "--overwrite", "--dry-run"]) == 2
    assert "the train split has no window of lookback 90 + horizon 6" in capsys.readouterr().err
