"""Time-series data: series from tables (read by :mod:`lstmkit.data.tables`), splits, scalers, windows,
calendar features.

A table (CSV or Parquet file, or a pandas DataFrame) holds an optional time column, an optional
series-id column and numeric columns. :func:`load_table` turns it into a :class:`SeriesSet`: one
:class:`Series` per id, each with

* ``past``   (N, P) float32: the observed channels, the targets first (``P = n_target + n_covariates``);
* ``future`` (N, F) float32: known-future channels (``--future-covariates`` and calendar features).

Windows follow the Informer protocol: a window with origin ``t`` reads rows ``[t - L, t)`` and
forecasts rows ``[t, t + H)``; a window belongs to a split when its forecast rows lie in the split,
its lookback may reach into the previous split.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from lstmkit.data.files import listing
from lstmkit.data.tables import (  # table_name and read_table: also imported from here
    FLOAT32_MAX,
    check_numeric,
    numeric_like,
    parse_times,
    read_table,
    table_name,
    where,
)
from lstmkit.errors import DataError

FeatureMode = Literal["S", "M", "MS"]
FillMethod = Literal["none", "ffill", "interpolate", "drop"]
SPLIT_NAMES = ("train", "valid", "test")


@dataclass
class ColumnSpec:
    """Which columns of the table to use and how (the ``--target/--features/...`` options)."""

    target: list[str]  # empty: the last numeric column (not time, series or covariate)
    features: FeatureMode = "S"
    covariates: list[str] = field(default_factory=list)
    future_covariates: list[str] = field(default_factory=list)
    time_column: str | None = None
    series_column: str | None = None
    calendar: bool = False
    fill: FillMethod = "none"


@dataclass
class Series:
    """One series: ``past`` (N, P), ``future`` (N, F), ``time`` (N,) datetime64 or None."""

    id: str
    past: np.ndarray
    future: np.ndarray
    time: np.ndarray | None


@dataclass
class SeriesSet:
    """All series of one table plus the resolved channel names."""

    series: list[Series]
    past_columns: list[str]  # targets first
    future_columns: list[str]  # user future covariates, then calendar features
    n_target: int
    notes: list[str] = field(default_factory=list)  # reported, not fatal (unsorted rows, gaps)

    @property
    def target_columns(self) -> list[str]:
        return self.past_columns[: self.n_target]


# ----------------------------------------------------------------------------------------- columns
def _split_list(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return list(value)


def resolve_columns(df: pd.DataFrame, spec: ColumnSpec, name: str) -> tuple[list[str], list[str], int]:
    """Return (past columns with targets first, future covariate columns, number of targets)."""
    have = set(df.columns)
    missing = [
        c
        for c in [*spec.target, *spec.covariates, *spec.future_covariates, spec.time_column, spec.series_column]
        if c is not None and c not in have
    ]
    if missing:
        raise DataError(f"{name}: column '{missing[0]}' not found (columns: {listing(df.columns)})")
    if not spec.target:
        spec = dataclasses.replace(spec, target=default_target(df, spec, name))
    if spec.features == "S":  # the named columns only: no column needs to be looked at
        return (
            list(spec.target) + [c for c in spec.covariates if c not in spec.target],
            list(spec.future_covariates),
            len(spec.target),
        )
    skip = {spec.time_column, spec.series_column, *spec.future_covariates}
    numeric = [c for c in df.columns if c not in skip and numeric_like(df[c])]
    if spec.features == "M":
        targets, others = list(spec.target) + [c for c in numeric if c not in spec.target], []
    elif spec.features == "MS":
        targets = list(spec.target)
        others = [c for c in numeric if c not in targets] + [
            c for c in spec.covariates if c not in targets and c not in numeric
        ]
    else:
        raise DataError(f"--features: expected S, M or MS, got {spec.features!r}")
    return targets + others, list(spec.future_covariates), len(targets)


def default_target(df: pd.DataFrame, spec: ColumnSpec, name: str) -> list[str]:
    """The target when none is named: the last numeric column that is not the time, series-id or a
    covariate column (ETTh1: ``OT``)."""
    skip = {spec.time_column, spec.series_column, *spec.covariates, *spec.future_covariates}
    numeric = [c for c in df.columns if c not in skip and numeric_like(df[c])]
    if not numeric:
        raise DataError(f"{name}: no numeric column to forecast; name the target with --target")
    return [str(numeric[-1])]


def _fill_missing(df: pd.DataFrame, cols: list[str], fill: FillMethod, name: str, group: str | None) -> pd.DataFrame:
    """Handle NaN in ``cols`` per ``--fill``; without a fill method NaN is an error (count + first line)."""
    values = df[cols].to_numpy()
    if values.dtype.kind == "f" and not np.isnan(values).any():  # no missing value: the common case
        return df
    nan = df[cols].isna()
    if not nan.to_numpy().any():
        return df
    if fill == "none":
        col = next(c for c in cols if nan[c].any())
        first = int(np.flatnonzero(nan[col].to_numpy())[0])
        raise DataError(
            f"{name}: {int(nan.to_numpy().sum())} missing values (first: column '{col}' "
            f"{where(name, int(df.index[first]))}); use --fill ffill|interpolate|drop"
        )
    if fill == "drop":
        return df[~nan.any(axis=1)]
    parts = [g for _, g in df.groupby(group, sort=False)] if group else [df]
    filled = []
    for g in parts:
        g = g.copy()
        if fill == "ffill":
            g[cols] = g[cols].ffill().bfill()
        else:
            g[cols] = g[cols].interpolate(limit_direction="both")
        filled.append(g)
    out = pd.concat(filled)
    if out[cols].isna().to_numpy().any():
        raise DataError(f"{name}: a column is entirely missing; cannot --fill {fill}")
    return out


def _check_times(t: pd.Series, name: str, sid: str, notes: list[str]) -> None:
    """Duplicated timestamps raise; gaps (steps above the median step) are noted."""
    steps = np.diff(t.to_numpy().astype("datetime64[ns]").astype(np.int64))
    if len(steps) and steps.min() > 0 and steps.max() == steps.min():  # evenly spaced, in order: nothing to say
        return
    dup = t.duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise DataError(
            f"{name}: duplicated timestamp {t.iloc[i]} ({where(name, int(t.index[i]))}"
            + (f", series {sid})" if sid else ")")
        )
    if len(t) > 2:
        step = t.diff().dropna()
        gaps = int((step > step.median()).sum())
        if gaps:
            notes.append(
                f"{name}: {gaps} gaps in the time column{' of series ' + sid if sid else ''} "
                f"(median step {step.median()})"
            )


def load_table(
    path: str | Path | pd.DataFrame,
    spec: ColumnSpec,
    *,
    min_length: int = 1,
    future_rows: int = 0,
    need: str = "lookback + horizon",
    fast: bool = True,
) -> SeriesSet:
    """Read ``path`` (a file or a DataFrame) and return its series with resolved columns.

    An empty ``spec.target`` is resolved by :func:`default_target` (``SeriesSet.target_columns``
    then starts with it). ``future_rows``: the last ``future_rows`` rows of each series may have
    empty past columns (they carry known-future covariates for ``predict``) and are kept, with NaN
    past values. A series shorter than ``min_length`` rows raises (``need`` names what it is).
    ``fast``: try :func:`simple_series` first (the same result for the simple tables it takes).
    """
    name = table_name(path)
    df = read_table(path)
    if len(df) == 0:
        raise DataError(f"{name}: no data rows")
    past_cols, fut_cols, n_target = resolve_columns(df, spec, name)
    simple = simple_series(df, spec, (past_cols, fut_cols, n_target), min_length) if fast and not future_rows else None
    if simple is not None:
        return simple
    df = check_numeric(df, past_cols + fut_cols, name)
    if spec.series_column:
        _check_ids(df[spec.series_column], name)
    notes: list[str] = []
    if spec.time_column:
        df = _time_order(df, spec, name, notes)
    tail = None
    if future_rows:
        tail = _future_tail(df, spec, past_cols, future_rows)
        df = df.drop(index=tail.index)
    df = _fill_missing(df, past_cols + fut_cols, spec.fill, name, spec.series_column)
    groups = df.groupby(spec.series_column, sort=False) if spec.series_column else [("", df)]
    series = []
    for sid, g in groups:
        sid = str(sid)
        if tail is not None:
            g = pd.concat(
                [g, tail[tail[spec.series_column] == g[spec.series_column].iloc[0]] if spec.series_column else tail]
            )
        if spec.time_column:
            _check_times(g[spec.time_column], name, sid, notes)
        if len(g) - future_rows < min_length:
            raise DataError(
                f"{name}: series {sid + ' ' if sid else ''}has {len(g) - future_rows} rows, fewer than "
                f"{need} = {min_length}"
            )
        series.append(_series(sid, g, spec, past_cols, fut_cols))
    fcols = fut_cols + (calendar_names() if spec.calendar else [])
    return SeriesSet(series, past_cols, fcols, n_target, notes)


#: ISO 8601 dates and times without a zone, at most microseconds (what pandas parses to datetime64[us])
ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)?")


def simple_series(
    df: pd.DataFrame, spec: ColumnSpec, columns: tuple[list[str], list[str], int], min_length: int
) -> SeriesSet | None:
    """The fast twin of :func:`load_table`'s checks for a simple table (a served or streamed forecast):
    numbers already numbers, all finite and within float32; ISO times without a zone, strictly
    increasing at one step within each series; string series ids, non-empty and in sorted blocks; each
    series at least ``min_length`` rows. Returns what the general path returns for such a table (no
    note to make), or None for any other table, which the general path then reads with its messages.
    ``columns``: :func:`resolve_columns`' (past, future, n_target)."""
    past_cols, fut_cols, n_target = columns
    values = _finite_numbers(df, past_cols + fut_cols)  # (N, P + F) float64
    if values is None:  # each check returns as soon as it fails: the general path reads the table anyway
        return None
    time = _iso_times(df[spec.time_column]) if spec.time_column else None
    if spec.time_column and time is None:
        return None
    blocks = _id_blocks(df[spec.series_column]) if spec.series_column else [("", 0, len(df))]
    if blocks is None:
        return None
    series = []
    for sid, lo, hi in blocks:
        t = None if time is None else time[lo:hi]
        if hi - lo < min_length or (t is not None and not _one_step(t)):
            return None
        future = values[lo:hi, len(past_cols) :].astype(np.float32)  # (n, F)
        if spec.calendar:
            if t is None:
                return None
            future = np.concatenate([future, calendar_features(t)], axis=1)  # (n, F + 8)
        series.append(Series(sid, values[lo:hi, : len(past_cols)].astype(np.float32), future, t))
    fcols = fut_cols + (calendar_names() if spec.calendar else [])
    return SeriesSet(series, past_cols, fcols, n_target, [])


def _finite_numbers(df: pd.DataFrame, cols: list[str]) -> np.ndarray | None:
    """(N, len(cols)) float64 when every column is a number column (not bool) of finite values
    within float32's range, else None."""
    out = np.empty((len(df), len(cols)), np.float64)
    for j, c in enumerate(cols):
        col = df[c]
        if not isinstance(col.dtype, np.dtype) or col.dtype.kind not in "iuf":  # not pandas' nullable Int64
            return None
        out[:, j] = col.to_numpy()
    if not np.isfinite(out).all() or (np.abs(out) > FLOAT32_MAX).any():
        return None
    return out


def _iso_times(col: pd.Series) -> np.ndarray | None:
    """The time column as :func:`parse_times` gives it, when it is datetime64 without a zone or ISO
    text that pandas reads as datetime64[us]; else None."""
    if col.dtype.kind == "M":  # a zone (pandas' own dtype, not numpy's): the general path
        return col.to_numpy() if isinstance(col.dtype, np.dtype) else None
    text = col.to_numpy()
    if col.dtype.kind != "O" or not all(isinstance(x, str) and ISO_TIME.fullmatch(x) for x in text):
        return None
    try:
        return text.astype("datetime64[us]")
    except ValueError:  # a 13th month, a 25th hour: the general path names the cell
        return None


def _id_blocks(ids: pd.Series) -> list[tuple[str, int, int]] | None:
    """(id, first row, end row) per series when the ids are non-empty strings in sorted order, else None."""
    v = ids.to_numpy()
    if not all(isinstance(x, str) and x.strip() for x in v):
        return None
    if len(v) > 1 and not (v[1:] >= v[:-1]).all():
        return None
    starts = [0, *(np.flatnonzero(v[1:] != v[:-1]) + 1).tolist(), len(v)]
    return [(str(v[a]), a, b) for a, b in zip(starts[:-1], starts[1:])]


def _one_step(t: np.ndarray) -> bool:
    """True when ``t`` rises by one positive step throughout (one row: trivially)."""
    d = np.diff(t.astype("datetime64[ns]").astype(np.int64))
    return len(d) == 0 or (d[0] > 0 and bool((d == d[0]).all()))


def _series(sid: str, g: pd.DataFrame, spec: ColumnSpec, past_cols: list[str], fut_cols: list[str]) -> Series:
    """The rows ``g`` of one series as arrays (calendar features appended to the future channels)."""
    time = g[spec.time_column].to_numpy() if spec.time_column else None
    future = g[fut_cols].to_numpy(np.float32).reshape(len(g), len(fut_cols))
    if spec.calendar:
        if time is None:
            raise DataError("--calendar needs --time-column")
        future = np.concatenate([future, calendar_features(time)], axis=1)
    return Series(sid, g[past_cols].to_numpy(np.float32), future, time)


def _check_ids(ids: pd.Series, name: str) -> None:
    """Every row names its series (an empty id would silently drop the row)."""
    empty = (ids.isna() | (ids.astype(str).str.strip() == "")).to_numpy()
    if empty.any():
        i = int(np.flatnonzero(empty)[0])
        raise DataError(f"{name}: column '{ids.name}' {where(name, int(ids.index[i]))}: empty series id")


def _time_order(df: pd.DataFrame, spec: ColumnSpec, name: str, notes: list[str]) -> pd.DataFrame:
    """``df`` with its time column parsed, sorted by (series, time); unsorted rows are noted."""
    df[spec.time_column] = parse_times(df[spec.time_column], name)
    if _in_order(df, spec):  # the usual case (and every streamed or served table): nothing to sort
        return df
    order = df.sort_values([c for c in (spec.series_column, spec.time_column) if c], kind="stable").index
    if not order.equals(df.index) and not (spec.series_column and _sorted_within(df, spec)):
        notes.append(f"{name}: rows are not in time order; sorted by '{spec.time_column}'")
    return df.loc[order]


def _in_order(df: pd.DataFrame, spec: ColumnSpec) -> bool:
    """True when the rows are already sorted by (series, time), as ``sort_values`` would leave them."""
    t = df[spec.time_column].to_numpy()
    if not spec.series_column:
        return bool((t[1:] >= t[:-1]).all())
    ids = df[spec.series_column].to_numpy()
    try:
        step = ids[1:] > ids[:-1]  # a new series: its id must sort after the previous one
        same = ids[1:] == ids[:-1]
    except TypeError:  # ids of mixed types: let sort_values decide
        return False
    return bool((step | (same & (t[1:] >= t[:-1]))).all())


def _sorted_within(df: pd.DataFrame, spec: ColumnSpec) -> bool:
    return bool(
        df.groupby(spec.series_column, sort=False)[spec.time_column].apply(lambda s: s.is_monotonic_increasing).all()
    )


def _future_tail(df: pd.DataFrame, spec: ColumnSpec, past_cols: list[str], rows: int) -> pd.DataFrame:
    """The trailing ``rows`` rows of each series, which must hold every future covariate."""
    groups = df.groupby(spec.series_column, sort=False) if spec.series_column else [("", df)]
    tails = [g.iloc[-rows:] for _, g in groups]
    tail = pd.concat(tails)
    if tail[spec.future_covariates].isna().to_numpy().any() or tail[past_cols].notna().to_numpy().any():
        raise DataError(
            f"with --future-covariates, the last {rows} rows (per series) must give the future "
            f"covariates of the forecast and leave {', '.join(past_cols)} empty"
        )
    return tail


# ------------------------------------------------------------------------------------------ calendar
def calendar_names() -> list[str]:
    return [f"{k}_{f}" for k in ("minute", "hour", "weekday", "yearday") for f in ("sin", "cos")]


def calendar_features(time: np.ndarray) -> np.ndarray:
    """Cyclic calendar features (N, 8): sin/cos of minute-of-hour, hour-of-day, day-of-week, day-of-year."""
    t = pd.DatetimeIndex(time)
    phases = [t.minute / 60.0, (t.hour + t.minute / 60.0) / 24.0, t.day_of_week / 7.0, (t.day_of_year - 1) / 366.0]
    cols = []
    for p in phases:
        p = 2 * np.pi * np.asarray(p, dtype=np.float64)
        cols += [np.sin(p), np.cos(p)]
    return np.stack(cols, axis=1).astype(np.float32)  # (N, 8)


def future_times(time: np.ndarray, horizon: int) -> np.ndarray:
    """The ``horizon`` timestamps after ``time[-1]``, stepping by the median step of ``time``."""
    if time.dtype.kind == "M":  # datetime64 (times with a zone are Timestamp objects: pandas below)
        ns = time.astype("datetime64[ns]")
        d = np.diff(ns.astype(np.int64))
        if len(d) and (d == d[0]).all():  # one step throughout (the usual case): no pandas needed
            return ns[-1] + np.arange(1, horizon + 1) * np.timedelta64(int(d[0]), "ns")
    t = pd.DatetimeIndex(time)
    step = pd.Series(t).diff().median() if len(t) > 1 else pd.Timedelta(1, "D")
    return np.asarray([t[-1] + step * (k + 1) for k in range(horizon)], dtype="datetime64[ns]")


# -------------------------------------------------------------------------------------------- splits
def parse_split(text: str) -> tuple[float, float, float]:
    """``"0.7,0.1,0.2"`` (fractions) or ``"8640,2880,2880"`` (row counts) -> three numbers."""
    try:
        parts = tuple(float(p) for p in str(text).split(","))
    except ValueError:
        raise DataError(f"--split: expected three numbers like 0.7,0.1,0.2 or 8640,2880,2880, got {text!r}") from None
    if len(parts) != 3 or min(parts) < 0:
        raise DataError(f"--split: expected three non-negative numbers, got {text!r}")
    return parts


def split_bounds(n: int, split: Sequence[float]) -> dict[str, tuple[int, int]]:
    """Row ranges [lo, hi) of train/valid/test for a series of ``n`` rows (in time order)."""
    if all(p <= 1.0 for p in split) and sum(split) <= 1.0 + 1e-9:
        a, b, c = (int(round(p * n)) for p in split)
    else:
        a, b, c = (int(p) for p in split)
    if a + b + c > n:
        raise DataError(f"--split {','.join(str(int(p)) for p in split)}: needs {a + b + c} rows, series has {n}")
    return {"train": (0, a), "valid": (a, a + b), "test": (a + b, a + b + c)}


def window_origins(n: int, lo: int, hi: int, lookback: int, horizon: int) -> np.ndarray:
    """Origins t (stride 1) with forecast rows [t, t+H) inside [lo, hi) and lookback rows [t-L, t) >= 0."""
    first = max(lo, lookback)
    last = min(hi, n) - horizon
    return np.arange(first, last + 1, dtype=np.int64) if last >= first else np.zeros(0, np.int64)


# ------------------------------------------------------------------------------------------- scaler
@dataclass
class Standardizer:
    """Per-series, per-column standardisation ``z = (x - mean) / std`` with train-split statistics."""

    columns: list[str]
    mean: dict[str, list[float]]
    std: dict[str, list[float]]

    @classmethod
    def fit(cls, columns: list[str], arrays: dict[str, np.ndarray]) -> Standardizer:
        """``arrays``: series id -> (N, C) training rows."""
        mean, std = {}, {}
        for sid, a in arrays.items():
            a64 = a.astype(np.float64)
            m, s = a64.mean(axis=0), a64.std(axis=0)
            mean[sid], std[sid] = m.tolist(), np.where(s > 1e-8, s, 1.0).tolist()
        return cls(list(columns), mean, std)

    def _stats(self, sid: str, cols: slice) -> tuple[np.ndarray, np.ndarray]:
        if sid not in self.mean:
            raise DataError(
                f"series '{sid}' was not seen in training (the scaler has: {', '.join(list(self.mean)[:5])})"
            )
        return (np.asarray(self.mean[sid], np.float32)[cols], np.asarray(self.std[sid], np.float32)[cols])

    def transform(self, sid: str, x: np.ndarray, cols: slice = slice(None)) -> np.ndarray:
        m, s = self._stats(sid, cols)
        return ((x - m) / s).astype(np.float32)

    def inverse(self, sid: str, z: np.ndarray, cols: slice = slice(None)) -> np.ndarray:
        """Invert on the last axis (channels ``cols``)."""
        m, s = self._stats(sid, cols)
        return (z * s + m).astype(np.float32)

    def to_json(self) -> dict:
        return {"type": "standardizer", "columns": self.columns, "mean": self.mean, "std": self.std}

    @classmethod
    def from_json(cls, d: dict) -> Standardizer:
        return cls(list(d["columns"]), dict(d["mean"]), dict(d["std"]))
