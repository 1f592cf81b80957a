"""Windows of standardised series for the forecaster: the batch type, the prepared (scaled,
concatenated) series and the collate function that gathers windows by origin."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from lstmkit.data.timeseries import SeriesSet, Standardizer, parse_split, split_bounds, window_origins
from lstmkit.errors import DataError


class Batch(NamedTuple):
    """A batch of windows: past (B, L, P), future (B, L+H, F), y (B, H, C); standardised."""

    past: torch.Tensor
    future: torch.Tensor
    y: torch.Tensor


@dataclass
class Prepared:
    """All series of a table, standardised and concatenated row-wise (origins index these rows)."""

    sset: SeriesSet
    past: torch.Tensor  # (N_total, P)
    future: torch.Tensor  # (N_total, F)
    offsets: list[int]  # first row of each series
    split: str  # the --split text

    def local_origins(self, i: int, split: str, lookback: int, horizon: int) -> np.ndarray:
        """Origins (rows of series ``i``) of every window of ``split``, stride 1."""
        n = len(self.sset.series[i].past)
        lo, hi = split_bounds(n, parse_split(self.split))[split]
        return window_origins(n, lo, hi, lookback, horizon)

    def origins(self, split: str, lookback: int, horizon: int) -> np.ndarray:
        """Global origins (rows of the concatenation) of every window of ``split``, all series."""
        out = [off + self.local_origins(i, split, lookback, horizon) for i, off in enumerate(self.offsets)]
        return np.concatenate(out) if out else np.zeros(0, np.int64)


class WindowCollate:
    """list of global origins -> :class:`Batch` (gathers rows [t-L, t+H) at once)."""

    def __init__(self, prep: Prepared, lookback: int, horizon: int):
        self.prep, self.L, self.H = prep, lookback, horizon
        self.offsets = torch.arange(-lookback, horizon)  # (L+H,)

    def __call__(self, origins: Sequence[int]) -> Batch:
        idx = torch.as_tensor(np.asarray(origins, dtype=np.int64))[:, None] + self.offsets  # (B, L+H)
        rows = self.prep.past[idx]  # (B, L+H, P)
        c = self.prep.sset.n_target
        return Batch(rows[:, : self.L], self.prep.future[idx], rows[:, self.L :, :c])


def prepare(sset: SeriesSet, scaler: Standardizer, split: str, n_user_future: int) -> Prepared:
    """Standardise every series (past columns and user future covariates; calendar columns as is)."""
    parts_p, parts_f, offsets, off = [], [], [], 0
    P = len(sset.past_columns)
    for s in sset.series:
        past = scaler.transform(s.id, s.past, slice(0, P))
        fut = s.future.copy()
        if n_user_future:
            fut[:, :n_user_future] = scaler.transform(s.id, s.future[:, :n_user_future], slice(P, P + n_user_future))
        parts_p.append(np.nan_to_num(past))
        parts_f.append(fut)
        offsets.append(off)
        off += len(s.past)
    return Prepared(
        sset, torch.from_numpy(np.concatenate(parts_p)), torch.from_numpy(np.concatenate(parts_f)), offsets, split
    )


def fit_scaler(sset: SeriesSet, split: str, n_user_future: int) -> Standardizer:
    """Train-split statistics per series of the past columns and the user future covariates."""
    fractions = parse_split(split)
    arrays = {}
    for s in sset.series:
        lo, hi = split_bounds(len(s.past), fractions)["train"]
        if hi - lo < 2:
            raise DataError(f"series {s.id or '(single)'}: the train split has {hi - lo} rows")
        arrays[s.id] = np.concatenate([s.past[lo:hi], s.future[lo:hi, :n_user_future]], axis=1)
    return Standardizer.fit(sset.past_columns + sset.future_columns[:n_user_future], arrays)
