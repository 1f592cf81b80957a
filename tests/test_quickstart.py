"""`lstmkit quickstart`, reduced (2 epochs instead of 10) to keep CI fast.

The data (half-sine ramps that drop back at the top, each series at its own rate) is built so that a
linear map of the window cannot follow it: checked here without training. That the full demo's
LSTM (16 sequences x 200 samples, 10 epochs) beats the linear map it prints is checked by hand
(README, forecast section) since it takes most of a minute on 2 cores.
"""

import json

import numpy as np
import pandas as pd
import pytest

from lstmkit.cli.main import main
from lstmkit.tasks.forecast.baselines import RidgeLinear
from lstmkit.tasks.forecast.quickstart import NOISE, make_sine_csv, ramps


def test_demo_data(tmp_path):
    assert np.allclose(ramps(6, 0.25, 0.0), [-1, -np.sqrt(0.5), 0, np.sqrt(0.5), -1, -np.sqrt(0.5)])  # -cos(π p)
    df = pd.read_csv(make_sine_csv(tmp_path / "s.csv", n_series=3, length=60, seed=1))
    assert df.shape == (180, 3) and df["value"].abs().max() <= 1.0 + 6 * NOISE
    for _, one in df.groupby("series"):
        steps = np.diff(one["value"].to_numpy())
        assert (steps < -1.0).sum() >= 2 and (steps > -0.5).mean() > 0.8  # rises, with drops back at the top


def test_demo_data_defeats_a_linear_map(tmp_path):
    """The ridge map of the 50-step window (the baseline the demo prints), fitted on 16 series, errs
    at the drops: its one-step MSE stays far above the noise, which a model of the rule would reach."""
    df = pd.read_csv(make_sine_csv(tmp_path / "s.csv", n_series=16, length=200, seed=0))
    pairs = [(g["value"].to_numpy(np.float32)[:, None], np.arange(50, 140)) for _, g in df.groupby("series")]
    ridge = RidgeLinear.fit(pairs, 50, 1)
    err = [ridge.predict(x, np.arange(170, 200))[:, 0, 0] - x[170:200, 0] for x, _ in pairs]
    assert np.mean(np.concatenate(err) ** 2) > 100 * NOISE**2


def test_quickstart_reduced_run_learns_and_writes_plots(tmp_path, capsys):
    out = tmp_path / "qs"
    assert main(["quickstart", "--out", str(out), "--epochs", "2", "--no-progress", "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    mse = float(printed.strip().split("test MSE:")[1])
    lines = {line.split("  ")[1].strip(): line for line in printed.splitlines() if line.startswith("  ")}
    assert set(lines) == {"LSTM + linear", "linear map (ridge)", "last value"}  # no season in this data
    last = float(lines["last value"].split()[2])
    assert mse < last  # the variance is about 0.5: 2 epochs already beat the last value
    for name in ("config.json", "model.safetensors", "loss.png", "predictions.png", "metrics.json", "sine.csv"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test"]["mse_raw"] == pytest.approx(mse, rel=0.01)  # printed with 3 digits
    linear = float(lines["linear map (ridge)"].split()[3])
    assert metrics["test"]["baselines"]["linear"]["mse_raw"] == pytest.approx(linear, rel=0.01)
    assert metrics["training"]["epochs_run"] == 2
    assert f"w = {metrics['linear_weight']:.2f} (fitted on the validation windows)" in printed
    # a second run into the same folder replaces the model (the demo is meant to be rerun)
    assert main(["quickstart", "--out", str(out), "--epochs", "1", "--n-series", "4", "--no-progress"]) == 0
    assert json.loads((out / "metrics.json").read_text())["training"]["epochs_run"] == 1


def test_quickstart_options_are_checked(tmp_path, capsys):
    assert main(["quickstart", "--out", str(tmp_path / "q"), "--length", "60"]) == 2
    err = capsys.readouterr().err
    assert "length (--length) leaves no training or test window" in err and "\n" not in err.strip()
