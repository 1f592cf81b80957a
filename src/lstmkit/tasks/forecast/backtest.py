"""``lstmkit forecast backtest``: rolling-origin forecasts over one split of a table.

Origins ``t`` every ``stride`` steps among the split's windows (stride 1 would be every window, as
``evaluate`` uses); each forecast of rows ``[t, t + H)`` from rows ``[t - L, t)``. The result is one
row per origin and step: ``origin``, the time (or ``step``), ``h`` (1..H), and per target the truth,
``<target>_pred`` (the point forecast), ``<target>_q<q>`` per quantile and ``<target>_lo<level>`` /
``<target>_hi<level>`` per conformal level (``--intervals``), in original units.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from lstmkit.data.timeseries import Series, SeriesSet
from lstmkit.io import check_writable
from lstmkit.tasks.forecast import baselines as base
from lstmkit.tasks.forecast.config import BacktestOptions
from lstmkit.tasks.forecast.conformal import band_columns
from lstmkit.tasks.forecast.evaluation import metrics_table, score_part

if TYPE_CHECKING:
    from lstmkit.tasks.forecast.predict import ForecastPredictor


def backtest(p: ForecastPredictor, sset: SeriesSet, opts: BacktestOptions) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The forecasts of every origin (DataFrame) and their metrics: ``part``, ``forecasts``, the
    model's (mse, mae standardised; mse_raw, mae_raw, mape, mase, smape, crps in original units;
    interval coverage) and ``baselines`` on the same origins (:func:`.evaluation.score_part`);
    ``opts.plot``: a PNG."""
    check_writable(opts.plot, "--plot")
    cfg, C = p.config, p.dims["n_target"]
    H = cfg.horizon
    frames: list[pd.DataFrame] = []

    def collect(s: Series, o: np.ndarray, out_z: np.ndarray, bounds: list[tuple[float, Any, Any]]) -> None:
        pred_raw = p.scaler.inverse(s.id, out_z.transpose(0, 3, 1, 2), slice(0, C))  # (W, Q, H, C)
        true_raw = base.windows(s.past[:, :C], o, 0, H)  # (W, H, C)
        frames.append(_frame(p, s, o, pred_raw, true_raw, bounds))

    m = score_part(p, sset, opts.part, p.season(sset, None), opts.stride or H, collect)
    df = pd.concat(frames, ignore_index=True)
    if opts.plot:
        from lstmkit.plots import plot_backtest

        name = p.target_columns[0]
        first = df[df["series"] == df["series"].iloc[0]] if "series" in df else df
        bands = band_columns(name, cfg.quantiles, cfg.intervals)
        plot_backtest(opts.plot, first, name, cfg.time_column or "step", bands=bands)
    windows = m.pop("windows")
    return df, {"part": m.pop("part"), "forecasts": int(windows), **m}


def _frame(
    p: ForecastPredictor,
    s: Series,
    origins: np.ndarray,
    pred_raw: np.ndarray,
    true_raw: np.ndarray,
    bounds: list[tuple[float, np.ndarray, np.ndarray]],
) -> pd.DataFrame:
    """One row per origin and step; ``pred_raw`` (W, Q, H, C), ``true_raw`` (W, H, C), ``bounds``:
    each conformal level's (level, lo (W, H, C), hi (W, H, C))."""
    cfg = p.config
    H = cfg.horizon
    rows = (origins[:, None] + np.arange(H)[None, :]).ravel()  # (W*H,)
    cols: dict[str, Any] = {"series": [s.id] * rows.size} if cfg.series_column else {}
    cols["origin"] = np.repeat(s.time[origins] if s.time is not None else origins, H)
    cols[cfg.time_column or "step"] = s.time[rows] if s.time is not None else rows
    cols["h"] = np.tile(np.arange(1, H + 1), origins.size)
    for c, name in enumerate(p.target_columns):
        cols[name] = true_raw[..., c].ravel()
        cols[f"{name}_pred"] = pred_raw[:, cfg.point_index, :, c].ravel()
        for qi, q in enumerate(cfg.quantiles):
            cols[f"{name}_q{q:g}"] = pred_raw[:, qi, :, c].ravel()
        for level, lo, hi in bounds:
            cols[f"{name}_lo{level:g}"], cols[f"{name}_hi{level:g}"] = lo[..., c].ravel(), hi[..., c].ravel()
    return pd.DataFrame(cols)


def run(args: dict[str, Any], options: BacktestOptions) -> int:
    """``lstmkit forecast backtest --model DIR --data F [--output CSV] [--split] [--stride] [--plot]``."""
    from lstmkit import tasks
    from lstmkit.io import atomic_write_text
    from lstmkit.tasks.forecast.data import naming

    predictor: Any = tasks.task_class("forecast").Predictor.load(args["model"])
    with naming(args["data"]):
        df, m = backtest(predictor, predictor.series(args["data"]), options)
    out = args.get("output") or "backtest.csv"
    atomic_write_text(out, df.to_csv(index=False))
    wrote = f"{out}" + (f" and {options.plot}" if options.plot else "")
    print(
        f"{m['forecasts']} forecasts over the {m['part']} part: mse {m['mse']:.4f} mae {m['mae']:.4f} "
        f"mse_raw {m['mse_raw']:.4g} mae_raw {m['mae_raw']:.4g}; wrote {wrote}\n{metrics_table(m)}",
        file=sys.stderr,
    )
    return 0
