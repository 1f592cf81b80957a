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


def _two_sites(tmp_path):
    """multi.csv: two series of 200 rows, ids x and y in the column ``site``."""
    p = tmp_path / "multi.csv"
    pd.concat([_series(200, 1).assign(site="x"), _series(200, 2).assign(site="y")]).to_csv(p, index=False)
    return p


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
    p = _two_sites(tmp_path)
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
    net.members[0].encoder.register_forward_pre_hook(lambda m, args: seen.append(args[0].clone()))
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
    cycle = p.model.members[0].cycle  # (season, 1): the learnt cycle, taken out at each row's phase
    assert cycle is not None and sample.phase is not None
    q = cycle.detach()
    assert float(q.abs().max()) > 0
    x = x - q[torch.from_numpy(sample.phase).long()][None]  # (1, L, 1)
    fut = torch.cat([torch.from_numpy(sample.future), torch.zeros(12, 8)])[None]  # calendar (1, L+H, 8)
    _, (h_n, _) = p.model.members[0].encode(x, fut)
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


def test_slstm_cell_trains_reloads_and_inspect_draws_its_gates(csv, tmp_path, capsys):
    """--cell slstm: the encoder is lstmkit.nn.SLSTM; the reloaded model predicts exactly what the trained
    one did; the gates are the sLSTM's (i', f', z, o, c, n, m) and inspect draws them; bad heads exit 2."""
    from lstmkit.nn import LSTM, SLSTM

    out = tmp_path / "s"
    res = fit(csv, out, epochs=2, cell="slstm", heads=4)
    cfg = json.loads((out / "config.json").read_text())["config"]
    assert (cfg["cell"], cfg["heads"]) == ("slstm", 4)
    p = lstmkit.load(out)
    kinds = {type(m) for m in p.model.modules()}
    assert SLSTM in kinds and LSTM not in kinds
    assert p.predict(csv).equals(res.predictor.predict(csv))
    assert p.evaluate(csv, part="test")["mse"] == res.metrics["test"]["mse"]
    g = p.trace_gates(p.inspect_sample(None))[0]
    assert g.f.shape == g.n.shape == (1, 48 // 4, 16)
    assert float(g.i.min()) >= 0.0 and float(g.i.max()) <= 1.0 and float(g.n.min()) >= 1.0
    assert torch.isfinite(g.o * g.c / g.n).all()  # h: n >= 1 from the empty initial state on
    png = tmp_path / "g.png"
    assert main(["inspect", "--model", str(out), "--output", str(png)]) == 0
    assert png.stat().st_size > 1000 and str(png) in capsys.readouterr().out
    base = ["forecast", "train", "--data", str(csv), "--target", "load", "--time-column", "date", "--cell", "slstm"]
    assert main(base + ["--hidden-size", "16", "--heads", "3", "--out", str(tmp_path / "x")]) == 2
    assert "heads (--heads) must divide --hidden-size 16" in capsys.readouterr().err


# ------------------------------------------------------------------ metrics, conformal intervals, GIFT-Eval
def test_metrics_by_hand():
    """MASE scale, sMAPE (0/0 -> 0), CRPS as the weighted quantile loss, interval coverage and width."""
    from lstmkit.tasks.forecast.metrics import Scores, central_pairs, mase_scale

    train = np.array([[1.0], [3.0], [2.0], [5.0], [4.0], [6.0]])
    assert mase_scale(train, 2)[0] == pytest.approx((1 + 2 + 2 + 1) / 4)  # |y_t - y_{t-2}|
    assert mase_scale(train, 0)[0] == pytest.approx((2 + 1 + 3 + 1 + 2) / 5)  # no season: m = 1
    assert np.isnan(mase_scale(np.ones((5, 1)), 1)[0])  # constant: no scale
    true = np.array([2.0, 0.0]).reshape(1, 2, 1)  # (W, H, C)
    pred = np.array([1.0, 0.0]).reshape(1, 2, 1)
    q = np.array([[1.0, 2.0, 4.0], [-1.0, 0.0, 1.0]]).reshape(1, 2, 1, 3)  # levels 0.1, 0.5, 0.9
    sc = Scores([0.1, 0.5, 0.9])
    sc.add(pred, true, pred, true, np.array([1.5]), q)
    r = sc.result()
    assert r["mase"] == pytest.approx((1 / 1.5 + 0) / 2)
    assert r["smape"] == pytest.approx((200 * 1 / 3 + 0) / 2)  # the 0/0 step counts as 0
    # pinball sums: q0.1 0.1 + 0.1, q0.5 0, q0.9 0.2 + 0.1; sum |y| = 2
    assert r["crps"] == pytest.approx(np.mean([2 * 0.2 / 2, 0.0, 2 * 0.3 / 2]))
    point = Scores([0.1, 0.5, 0.9])
    point.add(pred, true, pred, true, np.array([1.5]))  # a point forecast: the same value at every level
    assert point.result()["crps"] == pytest.approx(1 / 2)  # = sum |y - ŷ| / sum |y|
    assert central_pairs([0.1, 0.25, 0.5, 0.75, 0.9]) == [(0, 4, 0.8), (1, 3, 0.5)]
    sc.add_interval("c", q[..., 0], q[..., 2], true)
    sc.add_interval("c", np.array([3.0]), np.array([4.0]), np.array([2.0]))  # a miss
    assert sc.interval_result("c") == pytest.approx({"coverage": 2 / 3, "width": (3 + 2 + 1) / 3})


def test_evaluate_and_backtest_metrics_match_a_hand_count(trained, csv):
    """MASE (scale: the series' training part, season 24) and sMAPE of the model and of the last-value
    baseline, from the raw table and the backtest's forecasts."""
    p = lstmkit.load(trained[0])
    m = p.evaluate(csv, part="test")
    bt, b = p.backtest(csv, part="test", stride=1, plot=None)
    raw = pd.read_csv(csv)["load"].to_numpy(np.float64)
    scale = np.abs(raw[24:280] - raw[:256]).mean()  # train rows [0, 280): 70% of 400
    y, yhat = bt["load"].to_numpy(np.float64), bt["load_pred"].to_numpy(np.float64)
    assert m["mase"] == pytest.approx(np.abs(y - yhat).mean() / scale, rel=1e-4)
    assert m["smape"] == pytest.approx((200 * np.abs(y - yhat) / (np.abs(y) + np.abs(yhat))).mean(), rel=1e-4)
    origins = np.arange(320, 400 - 12 + 1)  # the test part [320, 400), H 12
    last = np.abs(raw[origins[:, None] + np.arange(12)] - raw[origins - 1][:, None])
    assert m["baselines"]["last_value"]["mase"] == pytest.approx(last.mean() / scale, rel=1e-4)
    for k, r in [("model", m), *m["baselines"].items()]:
        assert {"mse", "mae", "mase", "smape"} <= set(r) and "crps" not in r, k  # a point model: no CRPS
    assert b["mase"] == pytest.approx(m["mase"]) and set(b["baselines"]) == set(m["baselines"])
    every_12th = p.backtest(csv, part="test", plot=None)[1]
    assert every_12th["forecasts"] == 6 and every_12th["mase"] != pytest.approx(m["mase"])


def test_conformal_calibration_and_window_scale_by_hand(capsys):
    from lstmkit.tasks.forecast.conformal import MIN_SCALE, Conformal, window_scale

    r = np.arange(1.0, 10.0).reshape(9, 1, 1)  # scores 1..9 of n = 9 windows
    c = Conformal.calibrate(r[::-1], [0.5, 0.8, 0.95])  # k = ceil(10 α): 5, 8, 10 > n
    assert c.half_width[:, 0, 0].tolist() == [5.0, 8.0, 9.0]
    assert "0.95: 9 validation windows are too few" in capsys.readouterr().err
    look = np.array([0.0, 1.0, 3.0, 6.0, 10.0]).reshape(1, 5, 1)
    assert window_scale(look, "window", 2)[0, 0, 0] == pytest.approx((3 + 5 + 7) / 3)
    assert window_scale(look, "window", 0)[0, 0, 0] == pytest.approx((1 + 2 + 3 + 4) / 4)
    assert window_scale(look, "window", 9)[0, 0, 0] == pytest.approx(2.5)  # a season beyond the window: m = 1
    assert window_scale(look, "none", 2)[0, 0, 0] == 1.0 and window_scale(np.ones((1, 5, 1)), "window", 1) == MIN_SCALE


def test_conformal_intervals_end_to_end(csv, tmp_path, capsys):
    """conformal.json holds the k-th smallest validation score per step; predict and backtest add the
    bounds; evaluate counts their coverage (at least nominal on the calibration windows themselves)."""
    out = tmp_path / "c"
    res = fit(csv, out, epochs=2, intervals=[0.9, 0.5], refit_linear=False)  # the model calibrated is the one saved
    p = lstmkit.load(out)
    assert p.config.intervals == [0.5, 0.9]  # kept ascending
    saved = json.loads((out / "conformal.json").read_text())
    assert (saved["levels"], saved["windows"], saved["season"]) == ([0.5, 0.9], 40 - 12 + 1, 24)
    # by hand: score = |y - ŷ| / σ on the standardised scale, σ = mean |z_t - z_{t-24}| over the lookback
    bt, _ = p.backtest(csv, part="valid", stride=1, plot=None)
    sc = json.loads((out / "scaler.json").read_text())
    mean, std = sc["mean"][""][0], sc["std"][""][0]
    z = (pd.read_csv(csv)["load"].to_numpy(np.float64) - mean) / std
    origins = np.arange(280, 320 - 12 + 1)
    look = z[origins[:, None] + np.arange(-48, 0)]  # (29, 48)
    sigma = np.abs(look[:, 24:] - look[:, :-24]).mean(axis=1)  # (29,)
    scores = (np.abs(bt["load"] - bt["load_pred"]).to_numpy().reshape(29, 12) / std) / sigma[:, None]
    k = int(np.ceil(30 * 0.9))
    assert np.allclose(np.sort(scores, axis=0)[k - 1], np.array(saved["half_width"])[1, :, 0], rtol=1e-3)
    valid = p.evaluate(csv, part="valid")["intervals"]
    assert valid["0.9"]["coverage"] >= 0.9 and valid["0.5"]["coverage"] >= 0.5  # split conformal, by construction
    df = p.predict(csv)
    assert list(df.columns) == ["date", "load", "load_lo0.5", "load_hi0.5", "load_lo0.9", "load_hi0.9"]
    assert (df["load_lo0.9"] < df["load_lo0.5"]).all() and (df["load_hi0.5"] < df["load_hi0.9"]).all()
    assert np.allclose(df["load_hi0.9"] - df["load"], df["load"] - df["load_lo0.9"], atol=1e-4)
    assert df.equals(res.predictor.predict(csv))
    test = res.metrics["test"]["intervals"]["0.9"]
    bt, _ = p.backtest(csv, part="test", stride=1, plot=str(tmp_path / "b.png"))
    inside = (bt["load"] >= bt["load_lo0.9"]) & (bt["load"] <= bt["load_hi0.9"])
    assert test["coverage"] == pytest.approx(inside.mean(), abs=1.5 / len(bt))
    assert test["width"] == pytest.approx((bt["load_hi0.9"] - bt["load_lo0.9"]).mean(), rel=1e-4)
    assert main(["forecast", "evaluate", "--model", str(out), "--data", str(csv)]) == 0
    assert "conformal 90% interval: coverage" in capsys.readouterr().out
    # plain absolute residuals: one width per step, whatever the window
    flat = fit(csv, tmp_path / "n", epochs=1, intervals=[0.8], interval_scale="none").predictor
    fb, _ = flat.backtest(csv, part="test", plot=None)
    assert (fb["load_hi0.8"] - fb["load_lo0.8"]).groupby(fb["h"]).std().max() < 1e-4


def test_conformal_errors(csv, tmp_path, capsys):
    base = ["forecast", "train", "--data", str(csv), "--target", "load", "--out", str(tmp_path / "x")]
    for args, msg in [
        (["--intervals", "0.8,0.8"], "intervals (--intervals) must be different values"),
        (["--intervals", "1.5"], "must be < 1"),
        (["--intervals", "0.8", "--split", "0.9,0,0.1", "--dry-run"], None),  # the dry run reads cheaply
        (["--intervals", "0.8", "--split", "0.9,0,0.1", "--epochs", "1"], "the valid part, which has no window"),
    ]:
        code = main(base + args)
        err = capsys.readouterr().err.strip()
        assert (code, msg is None or msg in err) == (0 if msg is None else 2, True), (args, err)
    out = tmp_path / "c"
    fit(csv, out, epochs=1, intervals=[0.8], hidden_size=4)
    (out / "conformal.json").write_text(json.dumps({"levels": [0.8]}))
    with pytest.raises(LstmkitError, match=r"conformal\.json: missing or malformed"):
        lstmkit.load(out)


def test_quantiles_intervals_series_and_covariates(tmp_path):
    """--quantiles with --intervals, a series column, a past covariate and calendar features: CRPS and
    the central interval's coverage by hand from the backtest's quantile columns."""
    p = _two_sites(tmp_path)
    res = fit(
        p,
        tmp_path / "m",
        epochs=1,
        series_column="site",
        covariates=["temp"],
        calendar=True,
        quantiles=[0.1, 0.5, 0.9],
        intervals=[0.8],
        lookback=24,
        horizon=6,
    )
    m = res.metrics["test"]
    bt, _ = res.predictor.backtest(p, part="test", stride=1, plot=None)
    y = bt["load"].to_numpy(np.float64)
    losses = []
    for q in (0.1, 0.5, 0.9):
        e = y - bt[f"load_q{q:g}"].to_numpy(np.float64)
        losses.append(2 * np.maximum(q * e, (q - 1) * e).sum() / np.abs(y).sum())
    assert m["crps"] == pytest.approx(np.mean(losses), rel=1e-4)
    inside = ((y >= bt["load_q0.1"]) & (y <= bt["load_q0.9"])).mean()
    assert m["quantile_intervals"]["0.8"]["coverage"] == m["interval_coverage"] == pytest.approx(inside, abs=1e-9)
    assert all("crps" in b for b in m["baselines"].values())  # the baselines' point forecasts, every level
    pred = lstmkit.load(tmp_path / "m").predict(p)
    assert list(pred.columns) == [
        "site",
        "date",
        "load",
        "load_q0.1",
        "load_q0.5",
        "load_q0.9",
        "load_lo0.8",
        "load_hi0.8",
    ]
    assert len(pred) == 12 and (pred["load_lo0.8"] < pred["load_hi0.8"]).all()


def _gift():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "bench" / "gift.py"
    spec = importlib.util.spec_from_file_location("gift", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gift_protocol_by_hand(tmp_path):
    """bench/gift.py on a small synthetic hourly table: windows, seasonal naive, MASE, CRPS, CSV."""
    gift = _gift()
    rng = np.random.default_rng(0)
    n = 960 + 300
    table = pd.DataFrame(
        {"date": pd.date_range("2024-01-01", periods=n, freq="h"), "a": rng.normal(10, 2, n), "b": rng.normal(5, 1, n)}
    )
    y = gift.truth(table)
    assert y.shape == (2, 20, 48) and y[1, 19, 47] == table["b"].iloc[-1] and y[0, 0, 0] == table["a"].iloc[300]
    assert gift.score(y, table=table) == {"MASE": 0.0, "CRPS": 0.0}
    x = table[["a", "b"]].to_numpy().T
    errs = np.array([[np.abs(x[c, 24:o] - x[c, : o - 24]).mean() for o in 300 + 48 * np.arange(20)] for c in (0, 1)])
    off = gift.score(y + 1.0, table=table)
    assert off["MASE"] == pytest.approx((1.0 / errs).mean()) and off["CRPS"] == pytest.approx(y.size / np.abs(y).sum())
    sn = gift.seasonal_naive(table)
    assert sn[1, 3, 30] == x[1, 300 + 48 * 3 - 24 + 30 % 24]
    path = gift.write_csv(sn, tmp_path / "f.csv", names=["a", "b"])
    written = pd.read_csv(path)
    assert list(written.columns) == ["window", "channel", "step", "value"] and len(written) == 2 * 20 * 48
    assert written.iloc[48 * 20]["channel"] == "b" and written.iloc[49]["step"] == 2
    assert gift.score(path, table=table) == pytest.approx(gift.score(sn, table=table))


@pytest.mark.real_data("ett")
def test_gift_seasonal_naive_on_ett1_h_short():
    """GIFT-Eval's ett1/H/short: ETTm1 summed per hour; seasonal naive scores MASE 0.977."""
    gift = _gift()  # its ETTM1 is ../shared/data/ett/ETTm1.csv, the folder the real_data mark checks
    table = gift.hourly(gift.ETTM1)
    first_hour = pd.read_csv(gift.ETTM1, nrows=4)  # 00:00, 00:15, 00:30, 00:45
    assert len(table) == 17420 and table["OT"].iloc[0] == pytest.approx(first_hour["OT"].sum())
    assert round(gift.score(gift.seasonal_naive(table), table=table)["MASE"], 3) == 0.977
