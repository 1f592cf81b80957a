"""Forecast accuracy metrics: one implementation for ``evaluate`` and ``backtest``, the model and every
baseline alike (GIFT-Eval's definitions, in original units).

Arrays are one series' forecasts and truth ``(W, H, C)`` (windows, steps, target channels); a
:class:`Scores` adds them up over windows and series and ``result()`` turns the sums into metrics.
With ``y`` the truth and ``ŷ`` the point forecast, over every window, step, channel and series:

* ``mse`` / ``mae`` on the standardised scale, ``mse_raw`` / ``mae_raw`` / ``mape`` in original units
  (:func:`lstmkit.tasks.forecast.baselines.error_sums`);
* ``mase`` = mean(|y − ŷ| / s_c), ``s_c = mean_t |y_t − y_{t−m}|`` over the training part of the
  series (channel c): the seasonal-naive in-sample error, ``m`` the season (1 without one);
  channels with ``s_c = 0`` (constant in training) are left out (``None`` when nothing is left);
* ``smape`` = mean(200·|y − ŷ| / (|y| + |ŷ|)) in %, a 0/0 term counted as 0;
* ``crps`` (with quantile levels) = mean over the levels q of 2·Σ pinball_q / Σ|y|,
  ``pinball_q = max(q·(y − ŷ_q), (q − 1)·(y − ŷ_q))``: GIFT-Eval's weighted quantile loss (a point
  forecast scores with ŷ_q = ŷ at every level, i.e. Σ|y − ŷ| / Σ|y| for levels symmetric about 0.5);
* an interval ``[lo, hi]`` (a central quantile interval, or a conformal one): ``coverage`` = share of
  y inside, ``width`` = mean(hi − lo) in original units.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lstmkit.tasks.forecast import baselines as base


def mase_scale(train: np.ndarray, season: int) -> np.ndarray:
    """``(C,)`` seasonal-naive in-sample error ``mean_t |y_t − y_{t−m}|`` of training rows ``(N, C)``,
    ``m = max(1, season)``; NaN where the rows are too few or the channel is constant."""
    m = max(1, int(season))
    if len(train) <= m:
        return np.full(train.shape[1], np.nan)
    x = np.asarray(train, np.float64)
    scale = np.abs(x[m:] - x[:-m]).mean(axis=0)  # (C,)
    return np.where(scale > 0, scale, np.nan)


def smape_terms(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """``200·|y − ŷ| / (|y| + |ŷ|)`` elementwise (%), 0 where both are 0."""
    p, t = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    den = np.abs(t) + np.abs(p)
    return np.divide(200.0 * np.abs(t - p), den, out=np.zeros_like(den), where=den > 0)


def pinball(pred: np.ndarray, true: np.ndarray, q: float) -> np.ndarray:
    """The quantile (pinball) loss ``max(q·e, (q − 1)·e)``, ``e = y − ŷ_q``, elementwise."""
    e = np.asarray(true, np.float64) - np.asarray(pred, np.float64)
    return np.maximum(q * e, (q - 1.0) * e)


def central_pairs(levels: Sequence[float]) -> list[tuple[int, int, float]]:
    """``(i, j, nominal)`` for each central interval ``[q_i, q_j]`` with ``q_i + q_j = 1``, ``q_i < 0.5``:
    nominal coverage ``q_j − q_i`` (0.1 and 0.9 give 0.8)."""
    pairs = []
    for i, lo in enumerate(levels):
        for j, hi in enumerate(levels):
            if lo < 0.5 < hi and abs(lo + hi - 1.0) < 1e-9:
                pairs.append((i, j, round(hi - lo, 10)))
    return pairs


def level_key(level: float) -> str:
    """The JSON key of an interval level: ``0.8`` -> ``"0.8"``."""
    return f"{level:g}"


class Scores:
    """Running sums of one forecaster's errors; ``levels``: the quantile levels CRPS averages over
    (empty: no CRPS)."""

    def __init__(self, levels: Sequence[float] = ()):
        self.levels = [float(q) for q in levels]
        self.sums: dict[str, float] | None = None
        self.extra: dict[str, float] = {}
        self.intervals: dict[str, dict[str, float]] = {}

    def _add(self, key: str, value: float) -> None:
        self.extra[key] = self.extra.get(key, 0.0) + float(value)

    def add(
        self,
        pred: np.ndarray,
        true: np.ndarray,
        pred_raw: np.ndarray,
        true_raw: np.ndarray,
        scale: np.ndarray,
        quantiles_raw: np.ndarray | None = None,
    ) -> None:
        """One series' windows: point forecasts ``pred`` / ``pred_raw`` and truth ``(W, H, C)``
        (standardised / original units), its MASE scale ``(C,)``, and its quantile forecasts
        ``(W, H, C, Q)`` at ``levels`` (None: the point forecast at every level)."""
        self.sums = base.add_sums(self.sums, base.error_sums(pred, true, pred_raw, true_raw))
        err = np.abs(np.asarray(pred_raw, np.float64) - np.asarray(true_raw, np.float64))  # (W, H, C)
        ok = np.isfinite(scale)  # (C,)
        self._add("scaled_ae", (err[..., ok] / scale[ok]).sum())
        self._add("n_scaled", err[..., ok].size)
        self._add("sape", smape_terms(pred_raw, true_raw).sum())
        self._add("n", err.size)
        if self.levels:
            self._add("abs_y", np.abs(np.asarray(true_raw, np.float64)).sum())
            for k, q in enumerate(self.levels):
                p = pred_raw if quantiles_raw is None else quantiles_raw[..., k]
                self._add(f"pinball{k}", pinball(p, true_raw, q).sum())

    def add_interval(self, key: str, lo: np.ndarray, hi: np.ndarray, true: np.ndarray) -> None:
        """The interval ``[lo, hi]`` (original units, any shape) against the truth: its hits and width."""
        s = self.intervals.setdefault(key, {"inside": 0.0, "width": 0.0, "n": 0.0})
        s["inside"] += float(((true >= lo) & (true <= hi)).sum())
        s["width"] += float(np.asarray(hi - lo, np.float64).sum())
        s["n"] += float(np.size(true))

    def result(self) -> dict[str, Any]:
        """mse, mae, mse_raw, mae_raw, mape, mase, smape (and crps with levels)."""
        if self.sums is None:
            raise ValueError("no forecasts were scored")
        x = self.extra
        out: dict[str, Any] = base.finish(self.sums)
        out["mase"] = x["scaled_ae"] / x["n_scaled"] if x["n_scaled"] else None
        out["smape"] = x["sape"] / max(x["n"], 1.0)
        if self.levels:
            losses = [
                2.0 * x[f"pinball{k}"] / x["abs_y"] if x["abs_y"] > 0 else float("nan") for k in range(len(self.levels))
            ]
            out["crps"] = float(np.mean(losses))
        return out

    def interval_result(self, key: str) -> dict[str, float]:
        """``coverage`` and mean ``width`` of the interval ``key``."""
        s = self.intervals[key]
        n = max(s["n"], 1.0)
        return {"coverage": s["inside"] / n, "width": s["width"] / n}
