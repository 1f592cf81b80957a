"""Split-conformal prediction intervals (``--intervals 0.8,0.95``).

At the end of training the point forecast of every validation window (stride 1, every series) is
compared with the truth on the standardised scale: scores ``r = |y − ŷ| / σ`` of shape (n, H, C),
n = the validation windows, where ``σ`` (per window and target channel) is

* ``--interval-scale window`` (the default): the window's own seasonal-naive error over its
  lookback, ``mean_t |x_t − x_{t−m}|`` (m the season when 0 < m < L, else 1; at least 1e-3), so
  that intervals widen and narrow with the recent volatility (normalised split conformal: the
  same finite-sample guarantee, and it follows a validation part calmer or wilder than the test);
* ``none``: 1, the plain absolute residuals.

For each level α, horizon step h and target channel c the half-width is the finite-sample
split-conformal quantile

    w[α, h, c] = r_(k)[h, c],   k = ceil((n + 1)·α)    (the k-th smallest of the n scores)

(with k > n, too few windows for the level, the largest score is used and a note says so).
The interval of a forecast is ``ŷ ± w·σ`` on the standardised scale, i.e. ``ŷ ± w·σ·std`` in
original units (``std`` of the series and channel from ``scaler.json``), so one calibration serves
every series. Saved as the transform ``conformal.json``::

    {"type": "split_conformal", "levels": [0.8, 0.95], "windows": n, "scale": "window", "season": m,
     "half_width": [[[w for c] for h] for α]}
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from lstmkit.data.timeseries import Standardizer
from lstmkit.errors import DataError, ModelFolderError

if TYPE_CHECKING:  # torch where residuals are computed (training); the runtime reads Conformal only
    import torch

#: the least window scale σ (standardised units): a constant lookback does not divide by zero
MIN_SCALE = 1e-3


def window_scale(lookback: np.ndarray, kind: str, season: int) -> np.ndarray:
    """σ (W, 1, C) of standardised lookback windows (W, L, C): ``mean_t |x_t − x_{t−m}|`` for
    ``kind`` "window" (m = season if 0 < season < L, else 1; at least :data:`MIN_SCALE`), 1 for "none"."""
    x = np.asarray(lookback, np.float64)
    if kind == "none":
        return np.ones((x.shape[0], 1, x.shape[2]))
    m = season if 0 < season < x.shape[1] else 1
    return np.maximum(np.abs(x[:, m:] - x[:, :-m]).mean(axis=1, keepdims=True), MIN_SCALE)


@dataclass
class Conformal:
    """Half-widths ``half_width`` (K, H, C) for ``levels`` (K,), in units of the window scale σ
    (``scale``, ``season``: :func:`window_scale`) on the standardised scale."""

    levels: list[float]
    half_width: np.ndarray
    windows: int
    scale: str = "window"
    season: int = 0

    @classmethod
    def calibrate(
        cls, residuals: np.ndarray, levels: Sequence[float], scale: str = "window", season: int = 0
    ) -> Conformal:
        """From scores ``|y − ŷ| / σ`` (n, H, C): ``w = r_(k)``, ``k = ceil((n + 1)·α)`` per level α."""
        n = len(residuals)
        if n == 0:
            raise DataError("--intervals: the valid part has no window to calibrate the intervals on")
        ordered = np.sort(np.asarray(residuals, np.float64), axis=0)  # (n, H, C), ascending per step and channel
        widths = []
        for level in levels:
            k = math.ceil((n + 1) * level)
            if k > n:
                print(
                    f"note: --intervals {level:g}: {n} validation windows are too few for a finite-sample "
                    f"guarantee (need {math.ceil(level / (1 - level))}); using the largest residual",
                    file=sys.stderr,
                )
            widths.append(ordered[min(k, n) - 1])
        return cls([float(q) for q in levels], np.stack(widths), n, scale, int(season))

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "split_conformal",
            "levels": self.levels,
            "windows": self.windows,
            "scale": self.scale,
            "season": self.season,
            "half_width": self.half_width.tolist(),
        }

    @classmethod
    def from_json(cls, obj: Any, levels: Sequence[float], horizon: int, n_target: int) -> Conformal:
        """The saved calibration, checked against the model (``conformal.json: ...`` otherwise)."""
        try:
            saved = [float(q) for q in obj["levels"]]
            width = np.asarray(obj["half_width"], np.float64)
            windows = int(obj["windows"])
            scale, season = str(obj["scale"]), int(obj["season"])
        except (KeyError, TypeError, ValueError) as e:
            raise ModelFolderError(f"conformal.json: missing or malformed ({type(e).__name__}: {e})") from None
        if saved != [float(q) for q in levels]:
            raise ModelFolderError(f"conformal.json: levels {saved} do not match --intervals {list(levels)}")
        if width.shape != (len(levels), horizon, n_target) or not np.isfinite(width).all() or (width < 0).any():
            raise ModelFolderError(
                f"conformal.json: half_width must be {len(levels)} x {horizon} x {n_target} non-negative numbers"
            )
        if scale not in ("window", "none") or season < 0:
            raise ModelFolderError(f"conformal.json: scale {scale!r} / season {season} unknown")
        return cls(saved, width, windows, scale, season)

    def bounds(
        self, scaler: Standardizer, sid: str, point: np.ndarray, lookback: np.ndarray, channels: slice
    ) -> list[tuple[float, np.ndarray, np.ndarray]]:
        """``(level, lo, hi)`` (W, H, C) in original units around the standardised point forecasts
        ``point`` (W, H, C) of series ``sid`` from the standardised lookback windows (W, L, C)."""
        sigma = window_scale(lookback, self.scale, self.season)  # (W, 1, C)
        out = []
        for level, w in zip(self.levels, self.half_width):
            half = w[None] * sigma  # (W, H, C)
            lo = scaler.inverse(sid, (point - half).astype(np.float32), channels)
            hi = scaler.inverse(sid, (point + half).astype(np.float32), channels)
            out.append((level, lo, hi))
        return out


def residuals(
    model: torch.nn.Module, collate: Any, origins: Sequence[int], point_index: int, scale: str, season: int
) -> np.ndarray:
    """Scores ``|y − ŷ| / σ`` (n, H, C) of the point forecast at global ``origins`` (standardised), on
    the model's device, in eval mode (the model's mode is restored)."""
    import torch

    with torch.no_grad():
        return _residuals(model, collate, origins, point_index, scale, season)


def _residuals(
    model: torch.nn.Module, collate: Any, origins: Sequence[int], point_index: int, scale: str, season: int
) -> np.ndarray:
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    try:
        for i in range(0, len(origins), 512):
            b = collate(list(origins[i : i + 512]))
            pred = model(b.past.to(device), b.future.to(device))[..., point_index]  # (B, H, C)
            sigma = window_scale(b.past[..., : b.y.shape[-1]].numpy(), scale, season)  # (B, 1, C)
            out.append((pred.cpu() - b.y).abs().numpy() / sigma)
    finally:
        model.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, 0, 0), np.float32)


def band_columns(name: str, quantiles: Sequence[float], levels: Sequence[float]) -> list[tuple[str, str, str, str]]:
    """``(label, low column, high column, colour)`` of target ``name``'s intervals in a forecast or
    backtest table, widest first: each conformal level (``<name>_lo0.95``, orange) and the
    lowest..highest quantile (blue)."""
    bands = [(f"{q:.0%} conformal", f"{name}_lo{q:g}", f"{name}_hi{q:g}", "C1") for q in sorted(levels, reverse=True)]
    if len(quantiles) > 1:
        lo, hi = quantiles[0], quantiles[-1]
        bands.append((f"q{lo:g}–q{hi:g}", f"{name}_q{lo:g}", f"{name}_q{hi:g}", "C0"))
    return bands
