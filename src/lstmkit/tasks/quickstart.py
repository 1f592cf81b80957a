"""``lstmkit quickstart``: the classic sine-wave LSTM, as a thin use of the forecast task.

Data: ``n_series`` sequences ``sin(start + 0.1·t)`` with a random ``start`` each (written to
``<out>/sine.csv``); windows of 50 samples predict the next value (lookback 50, horizon 1) with one
global model: 64 hidden units, MSE, Adam. Each sequence is split in time 70/15/15; the test MSE is
measured on every held-out window, in the sine's own units.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lstmkit.io import atomic_write_text


@dataclass
class QuickstartConfig:
    """Settings of the quickstart run (the defaults are the documented demo)."""

    out: str = "runs/quickstart"
    n_series: int = 16
    length: int = 200
    lookback: int = 50
    hidden_size: int = 64
    epochs: int = 10
    batch_size: int = 64
    lr: float = 3e-3
    max_time: float | None = 40.0
    seed: int = 0
    quiet: bool = False


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


def run(cfg: QuickstartConfig) -> dict:
    """Generate the data, train, write the model folder with loss.png and predictions.png.

    Returns ``test_mse`` (in the sine's units, every held-out window), ``train_seconds`` and the
    full ``test_metrics`` (with the baselines)."""
    from lstmkit.plots import plot_predictions
    from lstmkit.tasks.forecast import ForecastConfig, load_predictor, train
    from lstmkit.train import TrainConfig

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    data = make_sine_csv(out / "sine.csv", cfg.n_series, cfg.length, cfg.seed)
    fcfg = ForecastConfig(
        target=["value"],
        series_column="series",
        lookback=cfg.lookback,
        horizon=1,
        split="0.7,0.15,0.15",
        norm="none",
        patch=1,
        hidden_size=cfg.hidden_size,
    )
    tcfg = TrainConfig(
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        optimizer="adamw",
        weight_decay=0.0,
        schedule="cosine",
        patience=0,
        max_time=cfg.max_time,
        seed=cfg.seed,
        device="cpu",
        quiet=cfg.quiet,
    )
    t0 = time.monotonic()
    metrics = train(data, fcfg, tcfg, out)
    seconds = time.monotonic() - t0
    predictor = load_predictor(out)
    bt, _ = predictor.backtest(data, split="test", stride=1)
    first = bt[bt["series"] == bt["series"].iloc[0]]
    plot_predictions(
        out / "predictions.png",
        first["value"].to_numpy(),
        first["value_pred"].to_numpy(),
        title=f"quickstart: held-out windows of series {first['series'].iloc[0]} "
        f"(test MSE {metrics['test']['mse_raw']:.2e})",
    )
    test = metrics["test"]
    print(
        f"quickstart: trained in {seconds:.0f} s; test MSE {test['mse_raw']:.2e} "
        f"(last value {test['baselines']['last_value']['mse_raw']:.2e}); model folder {out}",
        file=sys.stderr,
    )
    return {"test_mse": test["mse_raw"], "train_seconds": seconds, "test_metrics": test}
