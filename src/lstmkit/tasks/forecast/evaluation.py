"""The model and the baselines on the same windows of one part of a table: ``evaluate`` (every window,
stride 1) and ``backtest`` (every ``stride`` steps) both score here, with :mod:`.metrics`.

For each series: origins of the part's windows, the model's forecasts (W, H, C, Q) on the
standardised scale, the baselines' (last value, ridge linear map, seasonal naive), the truth; the
sums of every metric per forecaster (:class:`~lstmkit.tasks.forecast.metrics.Scores`), the central
quantile intervals and the conformal intervals of the model. MASE's scale is the series' training
part (the model's ``--split`` of this table) with the evaluation's season (1 without one).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from lstmkit.data.timeseries import Series, SeriesSet, split_bounds
from lstmkit.errors import DataError
from lstmkit.tasks.forecast import baselines as base
from lstmkit.tasks.forecast.metrics import Scores, central_pairs, level_key, mase_scale

if TYPE_CHECKING:
    from lstmkit.tasks.forecast.predict import ForecastPredictor

#: ``fn(series, local origins, model outputs (W, H, C, Q) standardised, conformal bounds)``: backtest's frames
OnSeries = Callable[[Series, np.ndarray, np.ndarray, list[tuple[float, np.ndarray, np.ndarray]]], None]


def score_part(
    p: ForecastPredictor,
    sset: SeriesSet,
    part: str,
    season: int,
    stride: int = 1,
    on_series: OnSeries | None = None,
) -> dict[str, Any]:
    """Metrics of the model (top level) and of each baseline (``baselines``) over the windows of
    ``part`` every ``stride`` steps; ``windows`` counts them."""
    cfg, C = p.config, p.dims["n_target"]
    L, H = cfg.lookback, cfg.horizon
    win = p.windows(sset)
    zs = [win.targets(i) for i in range(len(sset.series))]  # (N_i, C) each
    linear = base.fit_ridge(win, L, H)
    names = ["model", "last_value", "linear"] + (["seasonal_naive"] if season else [])
    scores = {k: Scores(cfg.quantiles) for k in names}
    n_windows = 0
    for i, (s, z) in enumerate(zip(sset.series, zs)):
        o = win.local_origins(i, part, L, H)[::stride]
        if o.size == 0:
            continue
        n_windows += o.size
        out = p.forecast_origins(win, o + win.offsets[i])  # (W, H, C, Q)
        bounds = p.interval_bounds(s.id, out[..., cfg.point_index], base.windows(z, o, -L, 0))
        if on_series is not None:
            on_series(s, o, out, bounds)
        preds = {
            "model": out[..., cfg.point_index],
            "last_value": base.last_value(z, o, H),
            "linear": linear.predict(z, o),
        }
        if season:
            preds["seasonal_naive"] = base.seasonal_naive(z, o, H, season)
        true = base.windows(z, o, 0, H)  # (W, H, C)
        true_raw = p.scaler.inverse(s.id, true, slice(0, C))
        lo, hi = split_bounds(len(s.past), cfg.split)["train"]
        scale = mase_scale(s.past[lo:hi, :C], season)  # (C,)
        q_raw = p.scaler.inverse(s.id, out.transpose(0, 3, 1, 2), slice(0, C)).transpose(0, 2, 3, 1)  # (W, H, C, Q)
        for k, pred in preds.items():
            pred_raw = p.scaler.inverse(s.id, pred.astype(np.float32), slice(0, C))
            scores[k].add(pred, true, pred_raw, true_raw, scale, q_raw if k == "model" and cfg.quantiles else None)
        _add_intervals(p.config.quantiles, scores["model"], bounds, q_raw, true_raw)
    if n_windows == 0:
        raise DataError(f"the {part} part has no window of lookback {L} + horizon {H}")
    result: dict[str, Any] = {"part": part, "windows": int(n_windows), **scores["model"].result()}
    result.update(_interval_results(p, scores["model"]))
    result["baselines"] = {k: scores[k].result() for k in names[1:]}
    if season:
        result["baselines"]["seasonal_naive"]["season"] = season
    return result


def _add_intervals(
    levels: list[float],
    sc: Scores,
    bounds: list[tuple[float, np.ndarray, np.ndarray]],
    q_raw: np.ndarray,
    true_raw: np.ndarray,
) -> None:
    """The model's intervals against the truth: lowest..highest quantile (``interval_coverage``), each
    central quantile interval, each conformal level (``bounds``)."""
    if len(levels) > 1:
        sc.add_interval("range", q_raw[..., 0], q_raw[..., -1], true_raw)
        for i, j, nominal in central_pairs(levels):
            sc.add_interval(f"q{level_key(nominal)}", q_raw[..., i], q_raw[..., j], true_raw)
    for level, lo, hi in bounds:
        sc.add_interval(f"c{level_key(level)}", lo, hi, true_raw)


def _interval_results(p: ForecastPredictor, sc: Scores) -> dict[str, Any]:
    """``interval_coverage`` (lowest..highest quantile), ``quantile_intervals`` and ``intervals``
    (conformal): level -> coverage and mean width (original units)."""
    out: dict[str, Any] = {}
    if "range" in sc.intervals:
        out["interval_coverage"] = sc.interval_result("range")["coverage"]
        out["quantile_intervals"] = {
            level_key(nom): sc.interval_result(f"q{level_key(nom)}") for _, _, nom in central_pairs(p.config.quantiles)
        }
    if p.conformal is not None:
        out["intervals"] = {level_key(q): sc.interval_result(f"c{level_key(q)}") for q in p.conformal.levels}
    return out


def metrics_table(m: dict[str, Any]) -> str:
    """The model and each baseline, one row each: mse / mae (standardised), in original units, MAPE,
    MASE, sMAPE (and CRPS); then the intervals' coverage and width."""
    crps = "crps" in m
    head = f"{'':16s}{'mse':>10s}{'mae':>10s}{'mse_raw':>12s}{'mae_raw':>10s}{'mape%':>9s}{'mase':>8s}{'smape%':>9s}"
    rows = [head + (f"{'crps':>8s}" if crps else "")]
    for k, b in [("model", m), *m["baselines"].items()]:
        mase = f"{b['mase']:8.3f}" if b.get("mase") is not None else f"{'-':>8s}"
        row = f"{k:16s}{b['mse']:10.4f}{b['mae']:10.4f}{b['mse_raw']:12.4g}{b['mae_raw']:10.4g}{b['mape']:9.2f}"
        rows.append(row + mase + f"{b['smape']:9.2f}" + (f"{b['crps']:8.4f}" if crps else ""))
    if "interval_coverage" in m:
        rows.append(f"interval coverage {m['interval_coverage']:.3f} (lowest..highest quantile)")
    for name, what in (("quantile_intervals", "quantile"), ("intervals", "conformal")):
        for level, r in m.get(name, {}).items():
            rows.append(
                f"{what} {float(level):.0%} interval: coverage {r['coverage']:.3f}, mean width {r['width']:.4g}"
            )
    return "\n".join(rows)
