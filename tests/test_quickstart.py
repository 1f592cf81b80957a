"""`lstmkit quickstart`, reduced (2 epochs instead of 10) to keep CI fast.

The full demo (16 sequences x 200 samples, 10 epochs) must reach test MSE < 1e-3; that is checked
by hand (README, forecast section) since it takes most of a minute on 2 cores.
"""

import json

import numpy as np
import pandas as pd
import pytest

from lstmkit.cli.main import main
from lstmkit.tasks.forecast.quickstart import make_sine_csv


def test_sine_data(tmp_path):
    df = pd.read_csv(make_sine_csv(tmp_path / "s.csv", n_series=3, length=60, seed=1))
    assert df.shape == (180, 3) and df["value"].abs().max() <= 1.0
    one = df[df["series"] == "s0"]["value"].to_numpy()
    # sin(start + 0.1 t): consecutive values obey x[t+1] = 2 cos(0.1) x[t] - x[t-1]
    assert np.allclose(one[2:], 2 * np.cos(0.1) * one[1:-1] - one[:-2], atol=1e-9)


def test_quickstart_reduced_run_learns_and_writes_plots(tmp_path, capsys):
    out = tmp_path / "qs"
    assert main(["quickstart", "--out", str(out), "--epochs", "2", "--no-progress", "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    mse = float(printed.strip().split("test MSE:")[1])
    assert mse < 0.02  # the sine has variance 0.5: even 2 epochs learn most of it
    for name in ("config.json", "model.safetensors", "loss.png", "predictions.png", "metrics.json", "sine.csv"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test"]["mse_raw"] == pytest.approx(mse, rel=0.01)  # printed with 3 digits
    assert metrics["training"]["epochs_run"] == 2
    # a second run into the same folder replaces the model (the demo is meant to be rerun)
    assert main(["quickstart", "--out", str(out), "--epochs", "1", "--n-series", "4", "--no-progress"]) == 0
    assert json.loads((out / "metrics.json").read_text())["training"]["epochs_run"] == 1


def test_quickstart_options_are_checked(tmp_path, capsys):
    assert main(["quickstart", "--out", str(tmp_path / "q"), "--length", "60"]) == 2
    err = capsys.readouterr().err
    assert "length (--length) leaves no training or test window" in err and "\n" not in err.strip()
