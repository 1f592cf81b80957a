"""``lstmkit quickstart``: the classic sine-wave LSTM, as a thin use of the forecast task.

Data: ``n_series`` sequences ``sin(start + 0.1·t)`` with a random ``start`` each (written to
``<out>/sine.csv``); windows of ``lookback`` (50) samples predict the next value (horizon 1) with one
global model: 64 hidden units, MSE, AdamW with a cosine schedule. Each sequence is split in time
70/15/15; the test MSE is measured on every held-out window, in the sine's own units.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lstmkit.io import atomic_write_text
from lstmkit.tasks.forecast.config import QuickstartOptions


def make_sine_csv(path: str | Path, n_series: int, length: int, seed: int) -> Path:
    """Write ``n_series`` sequences ``sin(start + 0.1·t)``, ``start ~ U(0, 2π)``: columns series, t, value."""
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    frames = [
        pd.DataFrame({"series": f"s{k}", "t": t, "value": np.sin(rng.uniform(0, 2 * np.pi) + 0.1 * t)})
        for k in range(n_series)
    ]
    atomic_write_text(path, pd.concat(frames).to_csv(index=False))
    return Path(path)


def _is_quickstart(out: Path) -> bool:
    """Whether ``out`` holds an earlier quickstart's model (a forecaster of sine.csv's ``value``)."""
    if not (out / "config.json").is_file():
        return False
    from lstmkit.errors import LstmkitError
    from lstmkit.io import read_config

    try:
        header = read_config(out)
    except LstmkitError:
        return False
    return header["task"] == "forecast" and (out / "sine.csv").is_file() and header["config"].get("target") == ["value"]


def quickstart(out: str | Path = "runs/quickstart", options: QuickstartOptions | None = None) -> dict[str, Any]:
    """Generate the data, train, write the model folder ``out`` with loss.png and predictions.png.

    Returns ``test_mse`` (in the sine's units, every held-out window), ``train_seconds`` and the
    full ``test_metrics`` (with the baselines)."""
    import lstmkit
    from lstmkit.plots import plot_predictions

    o = options or QuickstartOptions()
    out = Path(out)
    again = _is_quickstart(out)  # the demo replaces its own earlier folder, and nothing else
    with tempfile.TemporaryDirectory() as tmp:  # the model folder is written whole: the data joins it after
        t0 = time.monotonic()
        csv = make_sine_csv(Path(tmp) / "sine.csv", o.n_series, o.length, o.forecast.train.seed)
        result = lstmkit.train("forecast", csv, out=out, config=o.forecast, overwrite=again, quiet=not o.progress)
        seconds = time.monotonic() - t0
        data = Path(shutil.copy(csv, out / "sine.csv"))
    test = result.metrics.get("test") or result.predictor.evaluate(data, part="test")
    bt, _ = result.predictor.backtest(data, part="test", stride=1)  # type: ignore[attr-defined]
    first = bt[bt["series"] == bt["series"].iloc[0]]
    plot_predictions(
        out / "predictions.png",
        first["value"].to_numpy(),
        first["value_pred"].to_numpy(),
        title=f"quickstart: held-out windows of series {first['series'].iloc[0]} (test MSE {test['mse_raw']:.2e})",
    )
    print(
        f"quickstart: trained in {seconds:.0f} s; test MSE {test['mse_raw']:.2e} "
        f"(last value {test['baselines']['last_value']['mse_raw']:.2e}); model folder {out}",
        file=sys.stderr,
    )
    return {"test_mse": test["mse_raw"], "train_seconds": seconds, "test_metrics": test}


def run(args: dict[str, Any], options: QuickstartOptions) -> int:
    """``lstmkit quickstart [--out DIR] [--epochs N] ...``: prints ``test MSE: <value>`` on stdout."""
    result = quickstart(args.get("out") or "runs/quickstart", options)
    print(f"test MSE: {result['test_mse']:.2e}")
    return 0
