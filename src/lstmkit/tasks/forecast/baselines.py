"""Forecast baselines and metrics, on the same windows as the model.

Every function works on *standardised* arrays: ``series`` (N, C) target channels of one series and
``origins`` (W,) window origins; a forecast is (W, H, C).

* last value:      ``ŷ[t+h] = x[t-1]``
* seasonal naive:  ``ŷ[t+h] = x[t - s + (h mod s)]`` (season ``s`` <= lookback)
* linear (ridge):  ``ŷ[t:t+H] = W x[t-L:t] + b``, one map shared by all channels (fitted on the train
  windows of every channel and series), ``W`` (H, L) from ``(XᵀX + λI)⁻¹Xᵀy``. The model's own maps
  (``relative``, and with a cycle ``period``) take both sides relative to ``x[t-1]`` and may add a bias
  per phase of the first forecast row ``t``: ``+ B[phase_t]``, ``B`` (W, H).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lstmkit.errors import DataError


def windows(series: np.ndarray, origins: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Rows ``[t+start, t+stop)`` of ``series`` (N, C) for every origin -> (W, stop-start, C)."""
    idx = origins[:, None] + np.arange(start, stop)[None, :]  # (W, stop-start)
    return series[idx]


def last_value(series: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
    """(W, H, C): the last lookback value repeated."""
    return np.repeat(series[origins - 1][:, None, :], horizon, axis=1)


def seasonal_naive(series: np.ndarray, origins: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """(W, H, C): the value one season before (same phase in the last observed season)."""
    if season < 1:
        raise DataError(f"--season must be >= 1, got {season}")
    if origins.size and origins.min() < season:
        raise DataError(f"--season {season} reaches before the first row for the first windows")
    lag = origins[:, None] - season + (np.arange(horizon) % season)[None, :]  # (W, H)
    return series[lag]


@dataclass
class RidgeLinear:
    """The linear baseline: one ridge map (L -> H) shared by all channels."""

    weight: np.ndarray  # (L + 1, H), the last row is the bias
    lookback: int

    @classmethod
    def fit(
        cls,
        pairs: list[tuple[np.ndarray, np.ndarray]],
        lookback: int,
        horizon: int,
        alpha: float = 1e-3,
        relative: bool = False,
        phases: list[np.ndarray] | None = None,
        period: int = 0,
    ) -> RidgeLinear:
        """``pairs``: (series (N, C), train origins) per series; ``alpha`` relative to the mean of diag(XᵀX);
        ``relative``: X and Y minus each window's last lookback value; ``phases`` (N,) per series and
        ``period`` > 0: a one-hot column per phase of each window's first forecast row (weight rows
        L+1.. : a bias per phase and horizon step)."""
        n = lookback + 1 + period
        xtx, xty = np.zeros((n, n)), np.zeros((n, horizon))
        for k, (series, origins) in enumerate(pairs):
            if origins.size == 0:
                continue
            past = _channels_last(windows(series, origins, -lookback, 0))  # (W*C, L)
            Y = _channels_last(windows(series, origins, 0, horizon))  # (W*C, H)
            if relative:
                past, Y = past - past[:, -1:], Y - past[:, -1:]
            X = np.concatenate([past, np.ones((len(past), 1))], axis=1)  # (W*C, L+1)
            if period:
                assert phases is not None
                hot = np.eye(period)[phases[k][origins].astype(np.int64)]  # (W, period)
                X = np.concatenate([X, np.repeat(hot, series.shape[1], axis=0)], axis=1)  # (W*C, L+1+period)
            xtx += X.T @ X
            xty += X.T @ Y
        if not xtx.any():
            raise DataError(
                f"the train split has no window of lookback {lookback} + horizon {horizon} "
                "(the linear baseline is fitted on it)"
            )
        lam = alpha * np.trace(xtx) / len(xtx)
        weight = np.linalg.solve(xtx + lam * np.eye(len(xtx)), xty)
        return cls(weight, lookback)

    def predict(self, series: np.ndarray, origins: np.ndarray) -> np.ndarray:
        """(W, H, C) forecasts."""
        W, C = origins.size, series.shape[1]
        X = _design(windows(series, origins, -self.lookback, 0))  # (W*C, L+1)
        return (X @ self.weight).reshape(W, C, -1).transpose(0, 2, 1)  # (W, H, C)


def fit_ridge(
    win: Any,
    lookback: int,
    horizon: int,
    relative: bool = False,
    channels: list[int] | None = None,
    parts: tuple[str, ...] = ("train",),
    period: int = 0,
) -> RidgeLinear:
    """The linear baseline of a table's standardised windows (``forecast.data.Windows``): one ridge map
    fitted on every series' windows of ``parts`` (the train split), all target channels pooled
    (``channels``: those only); ``relative``: lookback and horizon both taken relative to the window's
    last value (NLinear), the model's own linear maps (one per channel); ``period`` > 0: with a bias per
    cycle phase (the windows' last future channel, see ``forecast.data.standardise``)."""
    pick = slice(None) if channels is None else channels
    pairs = [
        (win.targets(i)[:, pick], np.concatenate([win.local_origins(i, p, lookback, horizon) for p in parts]))
        for i in range(len(win.sset.series))
    ]
    ends = [*win.offsets[1:], len(win.future)]
    phases = [win.future[a:b, -1] for a, b in zip(win.offsets, ends)] if period else None
    return RidgeLinear.fit(pairs, lookback, horizon, relative=relative, phases=phases, period=period)


def _channels_last(w: np.ndarray) -> np.ndarray:
    """(W, T, C) -> (W*C, T): each channel's window as a row."""
    return w.transpose(0, 2, 1).reshape(-1, w.shape[1]).astype(np.float64)


def _design(w: np.ndarray) -> np.ndarray:
    x = _channels_last(w)  # (W*C, L)
    return np.concatenate([x, np.ones((x.shape[0], 1))], axis=1)  # (W*C, L+1)


# ------------------------------------------------------------------------------------------ metrics
def error_sums(pred: np.ndarray, true: np.ndarray, pred_raw: np.ndarray, true_raw: np.ndarray) -> dict[str, float]:
    """Sums for mse/mae (standardised), mse_raw/mae_raw (original units) and mape (%), plus counts."""
    err, err_raw = pred - true, pred_raw - true_raw
    nz = np.abs(true_raw) > 1e-8
    return {
        "se": float((err.astype(np.float64) ** 2).sum()),
        "ae": float(np.abs(err).astype(np.float64).sum()),
        "se_raw": float((err_raw.astype(np.float64) ** 2).sum()),
        "ae_raw": float(np.abs(err_raw).astype(np.float64).sum()),
        "ape": float((np.abs(err_raw[nz]) / np.abs(true_raw[nz])).astype(np.float64).sum()),
        "n": float(err.size),
        "n_nz": float(nz.sum()),
    }


def add_sums(a: dict[str, float] | None, b: dict[str, float]) -> dict[str, float]:
    return dict(b) if a is None else {k: a[k] + b[k] for k in a}


def finish(sums: dict[str, float]) -> dict[str, float]:
    """Turn :func:`error_sums` totals into the metrics."""
    n = max(sums["n"], 1.0)
    return {
        "mse": sums["se"] / n,
        "mae": sums["ae"] / n,
        "mse_raw": sums["se_raw"] / n,
        "mae_raw": sums["ae_raw"] / n,
        "mape": 100.0 * sums["ape"] / max(sums["n_nz"], 1.0),
    }


def pinball_coverage(lo: np.ndarray, hi: np.ndarray, true: np.ndarray) -> float:
    """Fraction of true values inside [lo, hi]."""
    return float(((true >= lo) & (true <= hi)).mean()) if true.size else float("nan")
