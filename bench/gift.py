"""GIFT-Eval's ``ett1/H/short`` protocol as reusable code (imported by ``bench/forecast.py``).

Run by hand: ``python bench/gift.py [--model DIR] [--csv FILE]`` prints seasonal naive and the
ridge-512 map (and a trained lstmkit model, or a forecasts CSV) on the protocol.

The protocol, as GIFT-Eval sets it up for ``ett1`` at frequency ``H``, term ``short``:

* the series: ETTm1's 15-minute readings SUMMED per hour (4 readings an hour; 17,420 hours); not
  ETTh1.csv, which samples the hour;
* 20 non-overlapping test windows of 48 steps cover the last 960 hours; window k (0..19, in time
  order) forecasts hours ``[N − 960 + 48k, N − 960 + 48(k + 1))`` and its input is the whole
  history before it;
* the 7 columns are scored as separate univariate series, on raw values;
* MASE = mean over series × windows × steps of ``|y − ŷ|`` divided by that window's input's
  ``mean_t |x[t] − x[t − 24]|`` (season 24);
* CRPS = the weighted quantile loss over the levels 0.1, ..., 0.9: ``mean_q 2·Σ pinball_q / Σ|y|``
  summed over every series, window and step; a point forecast scores with ŷ_q = ŷ at every level
  (the MAE-based value ``Σ|y − ŷ| / Σ|y|``).

Checks (``main``): seasonal naive (the last 24 hours repeated) scores MASE 0.977; the ridge map
(:func:`ridge_forecasts`) about 0.866.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
ETTM1 = ROOT.parent / "shared" / "data" / "ett" / "ETTm1.csv"
RESULT_CSV = ROOT / "bench" / "results" / "gift_ett1_h_short.csv"
SEASON, HORIZON, WINDOWS = 24, 48, 20
LEVELS = tuple(round(0.1 * k, 1) for k in range(1, 10))  # 0.1 .. 0.9
TIME = "date"

try:  # one implementation of the metric parts (the forecast task's)
    from lstmkit.tasks.forecast.metrics import mase_scale, pinball
except ImportError:  # pragma: no cover - run from a checkout without the package installed
    sys.path.insert(0, str(ROOT / "src"))
    from lstmkit.tasks.forecast.metrics import mase_scale, pinball


# ----------------------------------------------------------------------------------------- the data
def hourly(path: str | Path = ETTM1) -> pd.DataFrame:
    """ETTm1 summed per hour: columns ``date`` (the hour) and the 7 channels, 17,420 rows."""
    df = pd.read_csv(path, parse_dates=[TIME])
    hour = df[TIME].dt.floor("h")
    counts = hour.value_counts()
    if (counts != 4).any():
        raise ValueError(f"{path}: {int((counts != 4).sum())} hours without exactly 4 readings")
    return df.drop(columns=TIME).groupby(hour.rename(TIME), sort=True).sum().reset_index()


def channels(table: pd.DataFrame) -> list[str]:
    """The series of the table: every column but the time."""
    return [c for c in table.columns if c != TIME]


def origins(n: int) -> np.ndarray:
    """(20,) the first row of each test window: ``n − 960 + 48k``."""
    return n - WINDOWS * HORIZON + HORIZON * np.arange(WINDOWS)


def values(table: pd.DataFrame) -> np.ndarray:
    """(C, N) the channels as float64 rows."""
    return table[channels(table)].to_numpy(np.float64).T


def truth(table: pd.DataFrame) -> np.ndarray:
    """(C, 20, 48) the test windows' values."""
    x, o = values(table), origins(len(table))
    return np.stack([x[:, t : t + HORIZON] for t in o], axis=1)


def history(table: pd.DataFrame) -> pd.DataFrame:
    """The rows before the first test window (what a model may train on)."""
    return table.iloc[: origins(len(table))[0]].reset_index(drop=True)


def long_table(table: pd.DataFrame) -> pd.DataFrame:
    """The wide table as one univariate series per channel: columns ``date``, ``channel``, ``value``
    (for a global lstmkit model with ``series_column="channel"``, ``target=["value"]``)."""
    out = table.melt(id_vars=TIME, var_name="channel", value_name="value")
    return out[[TIME, "channel", "value"]]


# ----------------------------------------------------------------------------------------- scoring
def seasonal_errors(table: pd.DataFrame) -> np.ndarray:
    """(C, 20) each window input's ``mean_t |x[t] − x[t − 24]|`` over the whole history before it."""
    x, o = values(table), origins(len(table))
    return np.stack([mase_scale(x[:, :t].T, SEASON) for t in o], axis=1)


def score(
    forecasts: np.ndarray | str | Path, quantiles: np.ndarray | None = None, table: pd.DataFrame | None = None
) -> dict[str, float]:
    """MASE and CRPS of forecasts (C, 20, 48) in the summed series' units (or a CSV written by
    :func:`write_csv`); ``quantiles`` (C, 20, 48, 9) at the levels 0.1..0.9 (None: the point
    forecast at every level)."""
    table = hourly() if table is None else table
    if isinstance(forecasts, (str, Path)):
        forecasts, quantiles = read_csv(forecasts, channels(table))
    y = truth(table)
    pred = np.asarray(forecasts, np.float64)
    if pred.shape != y.shape:
        raise ValueError(f"forecasts: shape {pred.shape}, the protocol needs {y.shape} (channels, windows, steps)")
    scaled = np.abs(y - pred) / seasonal_errors(table)[..., None]  # (C, 20, 48)
    qs = np.repeat(pred[..., None], len(LEVELS), axis=-1) if quantiles is None else np.asarray(quantiles, np.float64)
    losses = [2.0 * pinball(qs[..., k], y, q).sum() / np.abs(y).sum() for k, q in enumerate(LEVELS)]
    return {"MASE": float(scaled.mean()), "CRPS": float(np.mean(losses))}


# ----------------------------------------------------------------------------------------- CSV
def write_csv(
    forecasts: np.ndarray,
    path: str | Path = RESULT_CSV,
    quantiles: np.ndarray | None = None,
    names: list[str] | None = None,
) -> Path:
    """``window,channel,step,value`` (window 0..19 in time order, channel the column name, step
    1..48, values in the summed series' units), plus ``q0.1``..``q0.9`` when ``quantiles`` is given."""
    names = names or channels(hourly())
    C, W, H = forecasts.shape
    cols: dict[str, Any] = {
        "window": np.tile(np.repeat(np.arange(W), H), C),
        "channel": np.repeat(names, W * H),
        "step": np.tile(np.arange(1, H + 1), C * W),
        "value": forecasts.reshape(-1),
    }
    if quantiles is not None:
        for k, q in enumerate(LEVELS):
            cols[f"q{q:g}"] = quantiles[..., k].reshape(-1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(cols).to_csv(path, index=False)
    return path


def read_csv(path: str | Path, names: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """The forecasts (C, 20, 48) of a :func:`write_csv` file (and its quantiles, when it has them)."""
    df = pd.read_csv(path).sort_values(["channel", "window", "step"])
    df = df.set_index("channel").loc[names].reset_index()  # the table's channel order
    point = df["value"].to_numpy(np.float64).reshape(len(names), WINDOWS, HORIZON)
    qcols = [f"q{q:g}" for q in LEVELS]
    if not set(qcols) <= set(df.columns):
        return point, None
    return point, df[qcols].to_numpy(np.float64).reshape(len(names), WINDOWS, HORIZON, len(LEVELS))


# ----------------------------------------------------------------------------------------- forecasters
def seasonal_naive(table: pd.DataFrame) -> np.ndarray:
    """(C, 20, 48): the last 24 values before each window, repeated."""
    x, o = values(table), origins(len(table))
    lag = np.arange(HORIZON) % SEASON - SEASON  # -24..-1, -24..-1
    return np.stack([x[:, t + lag] for t in o], axis=1)


def ridge_forecasts(
    table: pd.DataFrame, lookback: int = 512, alpha: float = 0.1, per_channel: bool = True
) -> np.ndarray:
    """(C, 20, 48) from a ridge linear map of the last ``lookback`` values.

    Exactly: each channel is standardised with the mean and std of the history before the first
    test window; the training pairs are every window (stride 1) of that history, the ``lookback``
    values as input (plus a constant 1) and the next 48 as output; the map ``W = (XᵀX + λI)⁻¹XᵀY``
    with ``λ = alpha · trace(XᵀX) / (lookback + 1)`` (the bias penalised too), one map per channel
    (``per_channel=False``: one map for all channels' windows pooled). Each test window's input is
    the ``lookback`` values before it, standardised the same way; the forecast is mapped back."""
    from numpy.lib.stride_tricks import sliding_window_view

    x, o = values(table), origins(len(table))
    first = o[0]
    mean, std = x[:, :first].mean(axis=1, keepdims=True), x[:, :first].std(axis=1, keepdims=True)
    z = (x - mean) / std  # (C, N)
    pairs = [sliding_window_view(z[c, :first], lookback + HORIZON) for c in range(len(z))]  # (n, L+H) each
    groups = [[c] for c in range(len(z))] if per_channel else [list(range(len(z)))]
    out = np.zeros((len(z), WINDOWS, HORIZON))
    for group in groups:
        win = np.concatenate([pairs[c] for c in group])
        X = np.concatenate([win[:, :lookback], np.ones((len(win), 1))], axis=1)  # (n, L+1)
        xtx = X.T @ X
        lam = alpha * np.trace(xtx) / len(xtx)
        weight = np.linalg.solve(xtx + lam * np.eye(len(xtx)), X.T @ win[:, lookback:])  # (L+1, H)
        for c in group:
            inputs = np.stack([np.append(z[c, t - lookback : t], 1.0) for t in o])  # (20, L+1)
            out[c] = (inputs @ weight) * std[c] + mean[c]
    return out


def model_forecasts(predictor: Any, table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
    """(C, 20, 48) forecasts of a model trained by ``lstmkit.train("forecast", ...)`` (and its
    quantiles (C, 20, 48, 9) when it was trained with ``quantiles`` 0.1..0.9): one
    ``predictor.predict(history before the window)`` per window.

    The model may be a global univariate one trained on :func:`long_table` of the history
    (``series_column="channel"``, ``target=["value"]``) or a multivariate one on the wide table
    (its targets the channels, ``time_column="date"``)."""
    cfg, names = predictor.config, channels(table)
    long = cfg.series_column is not None
    data = long_table(table) if long else table
    has_q = all(any(abs(q - level) < 1e-9 for q in cfg.quantiles) for level in LEVELS)
    point = np.zeros((len(names), WINDOWS, HORIZON))
    quant = np.zeros((*point.shape, len(LEVELS))) if has_q else None
    for k, t in enumerate(origins(len(table))):
        cut = table[TIME].iloc[t]
        df = predictor.predict(data[data[TIME] < cut])
        for c, name in enumerate(names):
            rows, col = (df[df[cfg.series_column] == name], cfg.target[0]) if long else (df, name)
            point[c, k] = rows[col].to_numpy()
            if quant is not None:
                quant[c, k] = rows[[f"{col}_q{q:g}" for q in LEVELS]].to_numpy()
    return point, quant


# ----------------------------------------------------------------------------------------- checks
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="an lstmkit forecast model folder to score (its forecasts go to --write)")
    ap.add_argument("--csv", help="a forecasts CSV (window,channel,step,value) to score")
    ap.add_argument("--write", default=str(RESULT_CSV), help=f"where --model's forecasts go (default {RESULT_CSV})")
    args = ap.parse_args()
    table = hourly()
    sn, rd = score(seasonal_naive(table), table=table), score(ridge_forecasts(table), table=table)
    print(f"ett1/H/short: {len(table)} hours, {WINDOWS} windows x {HORIZON} steps x {len(channels(table))} series")
    print(f"seasonal naive: MASE {sn['MASE']:.3f}  CRPS {sn['CRPS']:.4f}")
    print(f"ridge-512 (per channel, alpha 0.1): MASE {rd['MASE']:.3f}  CRPS {rd['CRPS']:.4f}")
    if args.csv:
        r = score(args.csv, table=table)
        print(f"{args.csv}: MASE {r['MASE']:.3f}  CRPS {r['CRPS']:.4f}")
    if args.model:
        import lstmkit

        t0 = time.monotonic()
        point, quant = model_forecasts(lstmkit.load(args.model), table)
        r = score(point, quant, table)
        out = write_csv(point, args.write, quant, channels(table))
        print(f"{args.model}: MASE {r['MASE']:.3f}  CRPS {r['CRPS']:.4f} ({time.monotonic() - t0:.0f} s); wrote {out}")


if __name__ == "__main__":
    main()
