"""``lstmkit forecast backtest``: rolling-origin forecasts over one split of a table.

Origins ``t`` every ``stride`` steps among the split's windows (stride 1 would be every window, as
``evaluate`` uses); each forecast of rows ``[t, t + H)`` from rows ``[t - L, t)``. The result is one
row per origin and step: ``origin``, the time (or ``step``), ``h`` (1..H), and per target the truth,
``<target>_pred`` (the point forecast) and ``<target>_q<q>`` per quantile, in original units.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from lstmkit.data.timeseries import Series, SeriesSet
from lstmkit.errors import DataError
from lstmkit.io import check_writable
from lstmkit.tasks.forecast import baselines as base
from lstmkit.tasks.forecast.config import BacktestOptions

if TYPE_CHECKING:
    from lstmkit.tasks.forecast.predict import ForecastPredictor


def backtest(p: ForecastPredictor, sset: SeriesSet, opts: BacktestOptions) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The forecasts of every origin (DataFrame) and their metrics (``split``, ``forecasts``, mse,
    mae on the standardised scale, mse_raw, mae_raw, mape in original units); ``opts.plot``: a PNG."""
    check_writable(opts.plot, "--plot")
    cfg, C = p.config, p.dims["n_target"]
    L, H = cfg.lookback, cfg.horizon
    win = p.windows(sset)
    frames, sums = [], None
    for i, s in enumerate(sset.series):
        o = win.local_origins(i, opts.part, L, H)[:: opts.stride or H]
        if o.size == 0:
            continue
        out_z = p.forecast_origins(win, o + win.offsets[i])  # (W, H, C, Q)
        pred_raw = p.scaler.inverse(s.id, out_z.transpose(0, 3, 1, 2), slice(0, C))  # (W, Q, H, C)
        true_raw = base.windows(s.past[:, :C], o, 0, H)  # (W, H, C)
        true_z = base.windows(win.targets(i), o, 0, H)
        point = cfg.point_index
        sums = base.add_sums(sums, base.error_sums(out_z[..., point], true_z, pred_raw[:, point], true_raw))
        frames.append(_frame(p, s, o, pred_raw, true_raw))
    if not frames or sums is None:
        raise DataError(f"the {opts.part} part has no window of lookback {L} + horizon {H}")
    df = pd.concat(frames, ignore_index=True)
    if opts.plot:
        from lstmkit.plots import plot_backtest

        first = df[df["series"] == df["series"].iloc[0]] if "series" in df else df
        plot_backtest(opts.plot, first, p.target_columns[0], cfg.time_column or "step")
    return df, {"part": opts.part, "forecasts": int(len(df) // H), **base.finish(sums)}


def _frame(
    p: ForecastPredictor, s: Series, origins: np.ndarray, pred_raw: np.ndarray, true_raw: np.ndarray
) -> pd.DataFrame:
    """One row per origin and step; ``pred_raw`` (W, Q, H, C), ``true_raw`` (W, H, C)."""
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
        f"mse_raw {m['mse_raw']:.4g} mae_raw {m['mae_raw']:.4g}; wrote {wrote}",
        file=sys.stderr,
    )
    return 0
