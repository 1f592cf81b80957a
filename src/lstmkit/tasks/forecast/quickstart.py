"""``lstmkit quickstart``: the classic sine-wave LSTM, as a thin use of the forecast task.

Data: ``n_series`` sequences ``sin(start + 0.1·t)`` with a random ``start`` each (written to
``<out>/sine.csv``); windows of ``lookback`` (50) samples predict the next value (horizon 1) with one
global model: 64 hidden units, MSE, AdamW with a cosine schedule. Each sequence is split in time
70/15/15; the test MSE is measured on every held-out window, in the sine's own units.
"""

from __future__ import annotations

import sys
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


def settings(o: QuickstartOptions) -> dict[str, Any]:
    """The forecast settings of the demo: one global model, lookback -> the next value, no normalisation."""
    return {
        "target": ["value"],
        "series_column": "series",
        "lookback": o.lookback,
        "horizon": 1,
        "split": [0.7, 0.15, 0.15],
        "norm": "none",
        "patch": 1,
        "hidden_size": o.hidden_size,
        "epochs": o.epochs,
        "batch_size": o.batch_size,
        "lr": o.lr,
        "optimizer": "adamw",
        "weight_decay": 0.0,
        "schedule": "cosine",
        "patience": 0,
        "max_time": o.max_time,
        "seed": o.seed,
        "device": "cpu",
    }


def quickstart(out: str | Path = "runs/quickstart", options: QuickstartOptions | None = None) -> dict[str, Any]:
    """Generate the data, train, write the model folder ``out`` with loss.png and predictions.png.

    Returns ``test_mse`` (in the sine's units, every held-out window), ``train_seconds`` and the
    full ``test_metrics`` (with the baselines)."""
    import lstmkit
    from lstmkit.plots import plot_predictions

    o = options or QuickstartOptions()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = make_sine_csv(out / "sine.csv", o.n_series, o.length, o.seed)
    t0 = time.monotonic()
    result = lstmkit.train("forecast", data, out=out, overwrite=True, quiet=not o.progress, **settings(o))
    seconds = time.monotonic() - t0
    test = result.metrics["test"]
    bt, _ = result.predictor.backtest(data, split="test", stride=1)  # type: ignore[attr-defined]
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
