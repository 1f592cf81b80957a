"""``lstmkit quickstart``: a one-minute LSTM forecaster, as a thin use of the forecast task, printed
beside the baselines it must beat.

Data (``<out>/sine.csv``): ``n_series`` sequences of half-sine ramps, each at its own rate: the value
climbs along ``−cos(π·p)`` from −1 to 1 while the phase ``p`` grows by ``v`` per step
(``v ~ U(0.04, 0.15)`` per series, a ramp of 7 to 25 steps), drops back to −1 when ``p`` passes 1,
plus noise (std 0.02). The drop happens at a LEVEL (the top), not after a fixed time, so no linear
map of the window can place it; an LSTM learns the threshold. (A pure sine, the classic demo, is
predicted almost exactly by a linear map of the window: no LSTM is needed there.)

Windows of ``lookback`` (50) samples predict the next value (horizon 1) with one global model:
64 hidden units, MSE, AdamW with a cosine schedule. Each sequence is split in time 70/15/15; the
test MSE is measured on every held-out window, in the data's own units, for the LSTM and for the
baselines on the same windows (last value, the ridge linear map of the window, seasonal naive when
the data has a season).
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

#: the demo's ramp rates (phase per step) and noise
RATES, NOISE = (0.04, 0.15), 0.02


def ramps(n: int, rate: float, start: float) -> np.ndarray:
    """``−cos(π·p_t)``, ``p_t = (start + rate·t) mod 1``: half-sine ramps from −1 to 1 that drop back to
    −1 at the top, (n,)."""
    return -np.cos(np.pi * ((start + rate * np.arange(n)) % 1.0))


def make_sine_csv(path: str | Path, n_series: int, length: int, seed: int) -> Path:
    """Write ``n_series`` ramp sequences (:func:`ramps`, rate ``~ U(0.04, 0.15)`` and start ``~ U(0, 1)``
    per series) plus Gaussian noise of std 0.02: columns series, t, value."""
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    frames = []
    for k in range(n_series):
        clean = ramps(length, rng.uniform(*RATES), rng.uniform(0, 1))
        frames.append(pd.DataFrame({"series": f"s{k}", "t": t, "value": clean + NOISE * rng.normal(size=length)}))
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

    Returns ``test_mse`` (in the data's units, every held-out window), ``train_seconds``, the
    baselines' test MSE (``baselines``: name -> MSE) and the full ``test_metrics``."""
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
        title=f"quickstart: held-out windows of series {first['series'].iloc[0]} (test MSE {test['mse_raw']:.2e}, "
        f"linear map {test['baselines']['linear']['mse_raw']:.2e})",
    )
    print(f"quickstart: trained in {seconds:.0f} s; model folder {out}", file=sys.stderr)
    baselines = {k: b["mse_raw"] for k, b in test["baselines"].items()}
    w = result.metrics.get("linear_weight")
    return {"test_mse": test["mse_raw"], "train_seconds": seconds, "baselines": baselines, "test_metrics": test, "w": w}


NAMES = {"linear": "linear map (ridge)", "last_value": "last value", "seasonal_naive": "seasonal naive"}


def comparison(result: dict[str, Any]) -> str:
    """The model's test MSE beside each baseline's, with the ratio model / baseline (< 1: the model wins),
    and the weight w of the linear map inside the model's forecast."""
    mse = result["test_mse"]
    rows = [
        f"held-out windows ({result['test_metrics']['windows']}), mean squared error:",
        f"  {'LSTM + linear':20s}{mse:10.2e}",
    ]
    for k in ("linear", "seasonal_naive", "last_value"):
        if k in result["baselines"]:
            b = result["baselines"][k]
            rows.append(f"  {NAMES[k]:20s}{b:10.2e}   model / this {mse / b if b > 0 else float('inf'):.2f}")
    if result.get("w") is not None:
        rows.append(f"model = (1 - w) LSTM + w linear map, w = {result['w']:.2f} (fitted on the validation windows)")
    return "\n".join(rows)


def run(args: dict[str, Any], options: QuickstartOptions) -> int:
    """``lstmkit quickstart [--out DIR] [--epochs N] ...``: prints the LSTM beside the baselines, then
    ``test MSE: <value>`` on stdout."""
    result = quickstart(args.get("out") or "runs/quickstart", options)
    print(comparison(result))
    print(f"test MSE: {result['test_mse']:.2e}")
    return 0
