"""Tables -> standardised windows for the forecaster: reading with the config's columns, resolving the
automatic settings, the scaler, the concatenated series that window origins index, the collate
function, and the lookback window saved for ``lstmkit inspect``.

A window with origin ``t`` reads rows ``[t - L, t)`` and forecasts rows ``[t, t + H)`` (the Informer
protocol, :mod:`lstmkit.data.timeseries`); origins index the rows of every series concatenated.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeAlias

import numpy as np
import pandas as pd

from lstmkit.data.timeseries import (
    ColumnSpec,
    Series,
    SeriesSet,
    Standardizer,
    load_table,
    split_bounds,
    table_name,
    window_origins,
)
from lstmkit.errors import DataError, ModelFolderError, note
from lstmkit.tasks.forecast.config import ForecastConfig

#: what every reader takes: a file path, a DataFrame, or series already read
if TYPE_CHECKING:  # torch only where batches are made for the network: the runtime windows with NumPy
    import torch

Table: TypeAlias = str | Path | pd.DataFrame | SeriesSet


class Batch(NamedTuple):
    """A batch of windows: past (B, L, P), future (B, L+H, F), y (B, H, C); standardised."""

    past: torch.Tensor
    future: torch.Tensor
    y: torch.Tensor


def column_spec(cfg: ForecastConfig) -> ColumnSpec:
    """The columns to read, as :func:`lstmkit.data.timeseries.load_table` takes them."""
    return ColumnSpec(
        list(cfg.target),
        cfg.features,
        list(cfg.covariates),
        list(cfg.future_covariates),
        cfg.time_column,
        cfg.series_column,
        cfg.calendar,
        cfg.fill,
    )


def read_series(
    data: Table,
    cfg: ForecastConfig,
    *,
    min_length: int | None = None,
    future_rows: int = 0,
    past_columns: Sequence[str] | None = None,
    n_target: int | None = None,
) -> SeriesSet:
    """The series of a table (a file path, a DataFrame, or an already read :class:`SeriesSet`).

    ``min_length`` rows per series (default lookback + horizon); ``past_columns`` (targets first,
    ``n_target`` of them): the columns the model was trained on, read as they are (other columns of
    the table are ignored). A series longer than ``cfg.max_rows`` keeps its last ``max_rows`` rows
    (one warning). Non-fatal findings are noted on stderr.
    """
    if isinstance(data, SeriesSet):
        return data
    if not isinstance(data, (str, Path, pd.DataFrame)) and not hasattr(data, "__fspath__"):
        raise DataError(f"data: expected a CSV or Parquet file path or a pandas DataFrame, got {type(data).__name__}")
    spec = column_spec(cfg)
    if past_columns is not None:  # exactly the training columns, whatever else the table holds
        k = len(past_columns) if n_target is None else n_target
        spec = replace(spec, target=list(past_columns[:k]), covariates=list(past_columns[k:]), features="S")
    need = cfg.lookback + cfg.horizon if min_length is None else min_length
    what = "lookback + horizon" if min_length is None else "lookback"
    sset = load_table(data, spec, min_length=need, future_rows=future_rows, need=what)
    for n in sset.notes:
        note(n)
    return cap_rows(sset, cfg.max_rows, future_rows, table_name(data))


def cap_rows(sset: SeriesSet, max_rows: int, future_rows: int, name: str) -> SeriesSet:
    """Series longer than ``max_rows`` observed rows keep their last ``max_rows`` (one warning)."""
    long = [s for s in sset.series if len(s.past) - future_rows > max_rows]
    if not long:
        return sset
    longest = max(len(s.past) - future_rows for s in long)
    print(
        f"warning: {name}: {len(long)} series longer than --max-rows {max_rows} (longest {longest} rows): "
        f"kept the last {max_rows} rows of each",
        file=sys.stderr,
    )
    keep = max_rows + future_rows
    series = [
        replace(s, past=s.past[-keep:], future=s.future[-keep:], time=None if s.time is None else s.time[-keep:])
        if len(s.past) > keep
        else s
        for s in sset.series
    ]
    return replace(sset, series=series)


@contextmanager
def naming(data: object) -> Iterator[None]:
    """Prefix a :class:`DataError` raised inside with the table's name (when it lacks it)."""
    try:
        yield
    except DataError as e:
        name = table_name(data)
        if str(e).startswith(name):
            raise
        raise DataError(f"{name}: {e}") from None


def day_season(sset: SeriesSet, lookback: int) -> int:
    """One day of steps (the median step of the first series' time column) when that period fits
    in the lookback, else 0 (no seasonal baseline)."""
    time = sset.series[0].time
    if time is None or len(time) < 3:
        return 0
    step = pd.Series(pd.DatetimeIndex(time)).diff().median()
    per_day = int(round(pd.Timedelta(days=1) / step)) if step > pd.Timedelta(0) else 0
    return per_day if 1 < per_day <= lookback else 0


def resolve(cfg: ForecastConfig, sset: SeriesSet) -> ForecastConfig:
    """``cfg`` with its automatic settings filled in from the training table: the target column,
    the patch length and the baseline season (what config.json then saves)."""
    return cfg.build(
        target=list(cfg.target) or sset.past_columns[:1],
        patch=cfg.patch_length,
        season=cfg.season or day_season(sset, cfg.lookback),
    )


@dataclass
class Windows:
    """All series of a table, standardised and concatenated row-wise (origins index these rows)."""

    sset: SeriesSet
    past: np.ndarray  # (N_total, P) float32
    future: np.ndarray  # (N_total, F) float32
    offsets: list[int]  # first row of each series
    split: Sequence[float]  # the --split numbers

    def local_origins(self, i: int, part: str, lookback: int, horizon: int) -> np.ndarray:
        """Origins (rows of series ``i``) of every window of ``part`` (train/valid/test), stride 1."""
        n = len(self.sset.series[i].past)
        lo, hi = split_bounds(n, self.split)[part]
        return window_origins(n, lo, hi, lookback, horizon)

    def origins(self, part: str, lookback: int, horizon: int) -> np.ndarray:
        """Global origins (rows of the concatenation) of every window of ``part``, all series."""
        out = [off + self.local_origins(i, part, lookback, horizon) for i, off in enumerate(self.offsets)]
        return np.concatenate(out) if out else np.zeros(0, np.int64)

    def targets(self, i: int) -> np.ndarray:
        """(N_i, C) standardised target channels of series ``i``."""
        c, off = self.sset.n_target, self.offsets[i]
        return self.past[off : off + len(self.sset.series[i].past), :c]


class WindowCollate:
    """list of global origins -> :class:`Batch` (gathers rows [t-L, t+H) at once); :meth:`arrays`
    gives the same three arrays in NumPy."""

    def __init__(self, windows: Windows, lookback: int, horizon: int):
        self.windows, self.L, self.H = windows, lookback, horizon
        self.offsets = np.arange(-lookback, horizon)  # (L+H,)

    def arrays(self, origins: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """past (B, L, P), future (B, L+H, F), y (B, H, C) of the windows at ``origins``."""
        idx = np.asarray(origins, dtype=np.int64)[:, None] + self.offsets  # (B, L+H)
        rows = self.windows.past[idx]  # (B, L+H, P)
        c = self.windows.sset.n_target
        return rows[:, : self.L], self.windows.future[idx], rows[:, self.L :, :c]

    def __call__(self, origins: Sequence[int]) -> Batch:
        import torch

        return Batch(*(torch.from_numpy(np.ascontiguousarray(a)) for a in self.arrays(origins)))


def cycle_phase(s: Series, period: int, first_row: int = 0) -> np.ndarray:
    """(N,) float32: each row's phase in a cycle of ``period`` steps, its position modulo ``period``.

    The position counts steps since 1970-01-01 when the series' time column rises by one fixed step
    throughout (so any table of the series, or predict's extension of it, agrees on the phase: hourly
    rows with period 24 give the hour of the day); otherwise (no time column, gaps such as trading days)
    it is the row number, counted from ``first_row``."""
    n = len(s.past)
    pos = np.arange(first_row, first_row + n, dtype=np.int64)  # (N,)
    if s.time is not None and n > 1:
        t = pd.DatetimeIndex(s.time).as_unit("ns").asi8  # (N,) ns since 1970 (UTC for zoned times)
        d = np.diff(t)
        if d[0] > 0 and bool((d == d[0]).all()):
            pos = t // d[0]
    return (pos % period).astype(np.float32)


def standardise(
    sset: SeriesSet,
    scaler: Standardizer,
    split: Sequence[float],
    n_user_future: int,
    period: int = 0,
    first_rows: Mapping[str, int] | None = None,
) -> Windows:
    """Standardise every series (past columns and user future covariates; calendar columns as is).
    ``period`` > 0 (the network's learnt cycle): each row's :func:`cycle_phase` is appended to the
    future channels, as is (``first_rows``: series id -> the row number of its first row, default 0)."""
    parts_p, parts_f, offsets, off = [], [], [], 0
    P = len(sset.past_columns)
    for s in sset.series:
        past = scaler.transform(s.id, s.past, slice(0, P))
        fut = s.future.copy()
        if n_user_future:
            fut[:, :n_user_future] = scaler.transform(s.id, s.future[:, :n_user_future], slice(P, P + n_user_future))
        if period:
            phase = cycle_phase(s, period, (first_rows or {}).get(s.id, 0))
            fut = np.concatenate([fut, phase[:, None]], axis=1)  # (n, F + 1)
        parts_p.append(np.nan_to_num(past))  # predict's empty future rows: 0, never read as input
        parts_f.append(fut)
        offsets.append(off)
        off += len(s.past)
    return Windows(sset, np.concatenate(parts_p), np.concatenate(parts_f), offsets, split)


def fit_scaler(sset: SeriesSet, split: Sequence[float], n_user_future: int) -> Standardizer:
    """Train-split statistics per series of the past columns and the user future covariates."""
    arrays = {}
    for s in sset.series:
        lo, hi = split_bounds(len(s.past), split)["train"]
        if hi - lo < 2:
            raise DataError(f"series {s.id or '(single)'}: the train split has {hi - lo} rows")
        arrays[s.id] = np.concatenate([s.past[lo:hi], s.future[lo:hi, :n_user_future]], axis=1)
    return Standardizer.fit(sset.past_columns + sset.future_columns[:n_user_future], arrays)


def scaler_from_json(obj: Any, columns: Sequence[str]) -> Standardizer:
    """The saved scaler, checked against the model's columns (``scaler.json: ...`` otherwise)."""
    try:
        scaler = Standardizer.from_json(obj)
        widths = {len(v) for v in (*scaler.mean.values(), *scaler.std.values())}
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ModelFolderError(f"scaler.json: missing or malformed ({type(e).__name__}: {e})") from None
    if scaler.columns != list(columns) or widths - {len(columns)}:
        raise ModelFolderError(f"scaler.json: columns {scaler.columns} do not match the model's {list(columns)}")
    return scaler


@dataclass
class GateSample:
    """One raw lookback window for ``lstmkit inspect``: ``past`` (L, P), ``future`` (L, F), of series
    ``series_id``."""

    series_id: str
    past: np.ndarray
    future: np.ndarray
    phase: np.ndarray | None = None  # (L,) the rows' cycle phases (:func:`cycle_phase`), with a learnt cycle

    @classmethod
    def last(cls, s: Series, lookback: int, period: int = 0) -> GateSample:
        """The last ``lookback`` rows of series ``s`` (and their phases in a cycle of ``period`` > 0)."""
        phase = cycle_phase(s, period)[-lookback:] if period else None
        return cls(s.id, s.past[-lookback:], s.future[-lookback:], phase)

    def to_json(self) -> dict[str, Any]:
        out = {"series_id": self.series_id, "past": self.past.tolist(), "future": self.future.tolist()}
        return out if self.phase is None else {**out, "phase": self.phase.tolist()}

    @classmethod
    def from_json(cls, d: Mapping[str, Any], lookback: int) -> GateSample:
        """The saved window; a malformed ``sample.json`` raises :class:`ModelFolderError`."""
        try:
            past = np.asarray(d["past"], np.float32).reshape(len(d["past"]), -1)  # (L, P)
            future = np.asarray(d["future"], np.float32).reshape(len(d["future"]), -1)  # (L, F)
            phase = np.asarray(d["phase"], np.float32).reshape(lookback) if "phase" in d else None  # (L,)
            sample = cls(str(d["series_id"]), past, future, phase)
        except (KeyError, TypeError, ValueError) as e:
            raise ModelFolderError(f"sample.json: missing or malformed ({type(e).__name__}: {e})") from None
        if len(past) != lookback or len(future) != lookback:
            raise ModelFolderError(f"sample.json: {len(past)} rows, the model's lookback is {lookback}")
        return sample
