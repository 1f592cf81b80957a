"""Peers for the forecast benchmark (issue 4): NeuralForecast ``LSTM`` and Darts ``BlockRNNModel(LSTM)``.

Run by the peers' own environment (not lstmkit's), usually from ``bench/forecast.py --peers PYTHON``::

    bench/work/peers-venv/bin/python bench/forecast_peers.py [--threads 1] [--max-time 300]

Same protocol as ``bench/forecast.py`` / ``lstmkit forecast evaluate`` on ETTh1 univariate OT, H24:
split 8640,2880,2880, OT standardised with its train-split mean / std (float64 statistics, float32
values, as ``lstmkit.data.timeseries.Standardizer``), lookback 96, one window per origin
``t = 11520 ... 14376`` (forecast rows ``[t, t+24)`` inside the test split, lookback ``[t-96, t)``
may reach into the valid split; ``window_origins``), MSE / MAE on the standardised scale averaged over
every window and step. The last-value baseline is computed here on the same windows as a check
(lstmkit's evaluate gives 0.0343). Each peer trains on the train split with the valid split as its
validation set, at most ``--max-time`` seconds of training (Lightning ``max_time``), and predicts every
test window in one library call; the predictions are checked to line up window for window.

Prints one JSON line per result: ``{"name", "mse", "mae", "train_seconds", ...}``; lstmkit is not
imported (this file must run without it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "ett" / "ETTh1.csv"
TRAIN, VALID, TEST = 8640, 2880, 2880
L, H = 96, 24


def load() -> tuple[np.ndarray, np.ndarray]:
    """(z, origins): standardised OT (float32, rows up to the end of the test split) and the test origins."""
    x = pd.read_csv(DATA)["OT"].to_numpy(np.float32)
    tr = x[:TRAIN].astype(np.float64)
    m, s = tr.mean(), tr.std()
    z = ((x - np.float32(m)) / np.float32(s)).astype(np.float32)[: TRAIN + VALID + TEST]
    lo, hi = TRAIN + VALID, TRAIN + VALID + TEST
    origins = np.arange(max(lo, L), hi - H + 1, dtype=np.int64)  # window_origins(n, lo, hi, L, H)
    return z, origins


def metrics(pred: np.ndarray, z: np.ndarray, origins: np.ndarray) -> dict:
    true = z[origins[:, None] + np.arange(H)[None, :]].astype(np.float64)  # (W, H)
    err = pred.astype(np.float64) - true
    return {"mse": float((err**2).mean()), "mae": float(np.abs(err).mean()), "windows": int(len(origins))}


class _Clock:
    """Lightning callback: wall time from fit start to fit end (stored on the class: models get copied)."""

    t0: float | None = None
    t1: float | None = None
    epochs = 0
    steps = 0


def clock_callback():
    import pytorch_lightning as pl

    class Clock(pl.Callback):
        def on_fit_start(self, trainer, module):
            _Clock.t0 = time.monotonic()

        def on_fit_end(self, trainer, module):
            _Clock.t1 = time.monotonic()
            _Clock.epochs, _Clock.steps = trainer.current_epoch, trainer.global_step

    return Clock()


def run_neuralforecast(z: np.ndarray, origins: np.ndarray, args: argparse.Namespace) -> dict:
    import neuralforecast
    from neuralforecast import NeuralForecast
    from neuralforecast.losses.pytorch import MSE
    from neuralforecast.models import LSTM

    # Library defaults (2+2 layers of 128, max_steps 1000, batch 32 series x 128 windows, lr 1e-3, robust
    # scaler) except: MSE loss (the metric; default MAE), input_size 96, early stopping on the valid split.
    model = LSTM(
        h=H,
        input_size=L,
        loss=MSE(),
        max_steps=args.nf_max_steps,
        val_check_steps=50,
        early_stop_patience_steps=args.patience,
        random_seed=args.seed,
        alias="LSTM",
        accelerator="cpu",
        max_time=_max_time(args.max_time),
        callbacks=[clock_callback()],
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=False,
        enable_checkpointing=False,
        default_root_dir=str(args.work),
    )
    df = pd.DataFrame({"unique_id": "OT", "ds": np.arange(len(z), dtype=np.int64), "y": z.astype(np.float64)})
    nf = NeuralForecast(models=[model], freq=1)
    _Clock.t0 = _Clock.t1 = None
    t0 = time.monotonic()
    # One fit on train (valid = the val_size rows before the test split), then every test window, stride 1.
    cv = nf.cross_validation(df=df, n_windows=None, test_size=TEST, step_size=1, val_size=VALID, refit=False)
    total = time.monotonic() - t0
    cv = cv.sort_values(["cutoff", "ds"])
    cut = cv["cutoff"].to_numpy().reshape(-1, H)[:, 0].astype(np.int64)
    ds = cv["ds"].to_numpy().reshape(-1, H).astype(np.int64)
    if not (np.array_equal(cut + 1, origins) and np.array_equal(ds, origins[:, None] + np.arange(H))):
        raise SystemExit(f"neuralforecast: windows do not line up ({len(cut)} windows, first cutoff {cut[:1]})")
    pred = cv["LSTM"].to_numpy().reshape(-1, H)
    return {
        "name": f"NeuralForecast {neuralforecast.__version__} LSTM",
        **metrics(pred, z, origins),
        "train_seconds": _Clock.t1 - _Clock.t0,
        "total_seconds": total,
        "steps": _Clock.steps,
        "settings": f"2x128 enc + 2x128 MLP dec, MSE loss, batch 32x128 windows, lr 1e-3, robust scaler, "
        f"max_steps {args.nf_max_steps}, early stop {args.patience} x 50 steps",
    }


def run_darts(z: np.ndarray, origins: np.ndarray, args: argparse.Namespace) -> dict:
    import darts
    from darts import TimeSeries
    from darts.models import BlockRNNModel
    from pytorch_lightning.callbacks import EarlyStopping

    series = TimeSeries.from_values(z.astype(np.float32))  # integer index = row number
    train = series[:TRAIN]
    valid = series[TRAIN - L : TRAIN + VALID]  # valid windows may look back into train
    # Library defaults (hidden 25, 1 layer, batch 32, Adam lr 1e-3, MSE loss, 100 epochs) with LSTM cells,
    # direct 24-step output and early stopping on the valid split.
    model = BlockRNNModel(
        model="LSTM",
        input_chunk_length=L,
        output_chunk_length=H,
        n_epochs=args.darts_epochs,
        random_state=args.seed,
        work_dir=str(args.work),
        save_checkpoints=False,
        pl_trainer_kwargs={
            "accelerator": "cpu",
            "max_time": _max_time(args.max_time),
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "logger": False,
            "enable_checkpointing": False,
            "callbacks": [EarlyStopping("val_loss", patience=args.patience), clock_callback()],
        },
    )
    _Clock.t0 = _Clock.t1 = None
    t0 = time.monotonic()
    model.fit(train, val_series=valid, verbose=False)
    fit_s = time.monotonic() - t0
    fc = model.historical_forecasts(
        series,
        start=int(origins[0]),
        start_format="position",
        forecast_horizon=H,
        stride=1,
        retrain=False,
        last_points_only=False,
        overlap_end=False,
        verbose=False,
        show_warnings=False,
    )
    starts = np.asarray([int(f.start_time()) for f in fc], np.int64)
    if not (np.array_equal(starts, origins) and all(len(f) == H for f in fc)):
        raise SystemExit(f"darts: windows do not line up ({len(fc)} windows, first start {starts[:1]})")
    pred = np.stack([f.values(copy=False)[:, 0] for f in fc])
    return {
        "name": f"Darts {darts.__version__} BlockRNNModel(LSTM)",
        **metrics(pred, z, origins),
        "train_seconds": fit_s,
        "epochs": _Clock.epochs,
        "settings": f"1x25 LSTM + linear head, MSE loss, batch 32, lr 1e-3, n_epochs {args.darts_epochs}, "
        f"early stop {args.patience} epochs",
    }


def _max_time(seconds: float) -> str:
    s = int(seconds)
    return f"00:{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peers", nargs="*", default=["neuralforecast", "darts"], help="peers to run")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--max-time", type=float, default=300.0, help="training cap per peer, seconds (default 300)")
    ap.add_argument("--patience", type=int, default=5, help="early-stopping patience (validation checks)")
    ap.add_argument("--nf-max-steps", type=int, default=1000, help="NeuralForecast max_steps (default 1000)")
    ap.add_argument("--darts-epochs", type=int, default=100, help="Darts n_epochs (default 100)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default=str(ROOT / "bench" / "work" / "peers"), help="scratch folder")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    args.work = Path(args.work)
    args.work.mkdir(parents=True, exist_ok=True)
    z, origins = load()
    last = np.repeat(z[origins - 1][:, None], H, axis=1)
    base = {"name": "last value (check)", **metrics(last, z, origins), "train_seconds": 0.0}
    print(json.dumps(base), flush=True)
    if abs(base["mse"] - 0.0343) > 5e-5:
        raise SystemExit(f"last-value check failed: mse {base['mse']:.5f}, expected 0.0343 (windows differ)")
    runners = {"neuralforecast": run_neuralforecast, "darts": run_darts}
    for name in args.peers:
        try:
            r = runners[name](z, origins, args)
        except Exception as exc:  # report and go on with the next peer
            r = {"name": name, "error": f"{type(exc).__name__}: {exc}"}
        r.update(threads=torch.get_num_threads(), torch=torch.__version__, load=os.getloadavg()[0])
        print(json.dumps(r), flush=True)


if __name__ == "__main__":
    sys.exit(main())
