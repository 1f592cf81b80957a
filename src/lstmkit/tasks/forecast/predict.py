"""The forecast predictor: predict (the H steps after each series), evaluate (model + baselines,
Informer protocol), backtest, and the encoder's gates for ``lstmkit inspect``.

Every method takes a table: a CSV/Parquet path (``str`` or ``Path``), a pandas DataFrame, or a
:class:`~lstmkit.data.timeseries.SeriesSet`. All model arithmetic is on the standardised scale
(``scaler.json``: train-split statistics per series and column); outputs are in original units.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lstmkit.data.files import listing
from lstmkit.data.tables import parse_csv, short, table_name
from lstmkit.data.timeseries import SeriesSet, calendar_features, future_times
from lstmkit.errors import DataError, ModelFolderError
from lstmkit.io import check_writable
from lstmkit.tasks.base import Predictor
from lstmkit.tasks.forecast.backtest import backtest
from lstmkit.tasks.forecast.config import SPEC, BacktestOptions, ForecastConfig, ForecastEvaluate, ForecastPredict
from lstmkit.tasks.forecast.conformal import Conformal, band_columns
from lstmkit.tasks.forecast.data import (
    GateSample,
    Table,
    WindowCollate,
    Windows,
    day_season,
    naming,
    read_series,
    scaler_from_json,
    standardise,
)
from lstmkit.tasks.forecast.evaluation import metrics_table, score_part


class ForecastPredictor(Predictor[ForecastConfig]):
    """``predict(table)`` -> the forecast DataFrame; ``evaluate(table, part=, season=)`` -> metrics;
    ``backtest(table, part=, stride=, plot=)`` -> (DataFrame, metrics).

    A table is one input: ``predict(df)`` or ``predict("data.csv")`` returns one DataFrame (one row
    per step and series: the time or ``step`` column, each target, its quantile columns
    ``<target>_q<q>``); ``predict([df1, df2])`` returns a list of them. A table without rows gives a
    forecast without rows.
    """

    spec = SPEC

    def setup(self) -> None:
        cfg, dims = self.config, self.dims
        try:
            cols = self.transforms["columns"]
            self.past_columns = [str(c) for c in cols["past"]]
            self.future_columns = [str(c) for c in cols["future"]]
        except (KeyError, TypeError) as e:
            raise ModelFolderError(f"columns.json: missing or malformed ({type(e).__name__}: {e})") from None
        if (len(self.past_columns), len(self.future_columns)) != (dims["n_past"], dims["n_future"]):
            raise ModelFolderError(
                f"columns.json: {len(self.past_columns)} past and {len(self.future_columns)} "
                f"future columns, the model was built for {dims['n_past']} and {dims['n_future']}"
            )
        n_user = len(cfg.future_covariates)
        self.scaler = scaler_from_json(self.transforms.get("scaler"), self.past_columns + self.future_columns[:n_user])
        sample = self.transforms.get("sample")
        self.sample = GateSample.from_json(sample, cfg.lookback) if sample is not None else None
        self.conformal = self._conformal()

    def _conformal(self) -> Conformal | None:
        """The split-conformal calibration of ``--intervals`` (``conformal.json``), None without it."""
        levels = self.config.intervals
        if not levels:
            return None
        saved = self.transforms.get("conformal")
        if saved is None:
            raise ModelFolderError("conformal.json: missing (the model was trained with --intervals)")
        return Conformal.from_json(saved, levels, self.config.horizon, self.dims["n_target"])

    @property
    def target_columns(self) -> list[str]:
        return self.past_columns[: self.dims["n_target"]]

    # ------------------------------------------------------------------ tables
    def series(self, data: Table, *, min_length: int | None = None, future_rows: int = 0) -> SeriesSet:
        """The series of ``data`` read with the saved column settings; the columns must match training."""
        sset = read_series(
            data,
            self.config,
            min_length=min_length,
            future_rows=future_rows,
            past_columns=self.past_columns,
            n_target=self.dims["n_target"],
        )
        unseen = [s.id for s in sset.series if s.id not in self.scaler.mean]
        if unseen:
            raise DataError(
                f"{table_name(data)}: series {short(unseen[0])} was not seen in training "
                f"({len(unseen)} such series; the model knows {listing(list(self.scaler.mean))}); "
                "forecast continues the training series only"
            )
        return sset

    @property
    def period(self) -> int:
        """The learnt cycle's period (0: none; a model trained before it has none)."""
        return int(self.dims.get("cycle", 0))

    def windows(self, sset: SeriesSet, first_rows: Mapping[str, int] | None = None) -> Windows:
        """Standardised windows of ``sset``, with each row's cycle phase (``first_rows``: see :func:`standardise`)."""
        n_user = len(self.config.future_covariates)
        return standardise(sset, self.scaler, self.config.split, n_user, self.period, first_rows)

    def forecast_origins(self, win: Windows, origins: np.ndarray, batch_size: int = 512) -> np.ndarray:
        """Standardised forecasts (W, H, C, Q) for global ``origins``."""
        cfg = self.config
        collate = WindowCollate(win, cfg.lookback, cfg.horizon)
        outs = [np.zeros((0, cfg.horizon, self.dims["n_target"], cfg.n_quantiles), np.float32)]
        for i in range(0, len(origins), batch_size):
            past, future, _ = collate.arrays(origins[i : i + batch_size].tolist())
            outs.append(self.network(np.ascontiguousarray(past), np.ascontiguousarray(future)))
        return np.concatenate(outs)

    def network(self, past: np.ndarray, future: np.ndarray) -> np.ndarray:
        """The network on standardised windows: past (B, L, P), future (B, L+H, F) -> (B, H, C, Q) float32."""
        import torch

        with torch.no_grad():
            return self.model(torch.from_numpy(past), torch.from_numpy(future)).numpy()

    # ------------------------------------------------------------------ predict
    def predict(self, inputs: Any, **options: Any) -> Any:
        """The forecast DataFrame of one table (a path, ``str`` included, or a DataFrame), or a list
        of them for a list of tables. ``plot="f.png"``: also draw the first series."""
        opts: Any = self.spec.predict().build(options)
        outputs = self.predict_items(self.items(inputs, opts), opts)
        return outputs if isinstance(inputs, (list, tuple)) else outputs[0]

    def stream(self, **options: Any) -> Any:
        """A :class:`~lstmkit.tasks.forecast.stream.ForecastStream`: rows in one at a time, forecasts out."""
        from lstmkit.tasks.forecast.stream import ForecastStream

        return ForecastStream(self, **options)

    def items(self, inputs: Any, options: Any) -> list[Any]:
        return list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]

    def read(self, path: str, options: Any) -> list[Any]:
        """One table: the file, or a CSV on standard input for ``-``."""
        if path == "-":
            stdin: Any = sys.stdin
            raw = stdin.buffer.read() if hasattr(stdin, "buffer") else stdin.read().encode("utf-8")
            if not raw.strip():
                raise DataError("<stdin>: no table on standard input; pipe a CSV in or pass --data FILE")
            return [parse_csv(raw, "<stdin>")]
        return [path]

    def predict_items(self, items: list[Any], options: ForecastPredict) -> list[pd.DataFrame]:
        check_writable(options.plot, "--plot")
        for i, t in enumerate(items, start=1):
            if not isinstance(t, (str, os.PathLike, pd.DataFrame, SeriesSet)):
                raise DataError(
                    f"input {i}: expected a table (a CSV or Parquet path, or a pandas DataFrame), got {type(t).__name__}"
                )
        return [self.forecast(t, options.plot if i == 0 else None) for i, t in enumerate(items)]

    def forecast(
        self, table: Table, plot: str | None = None, first_rows: Mapping[str, int] | None = None
    ) -> pd.DataFrame:
        """The H steps after the end of each series of ``table``, in original units (``first_rows``:
        series id -> the row number of its first row, for the cycle phase without a time column)."""
        cfg = self.config
        L, H, C = cfg.lookback, cfg.horizon, self.dims["n_target"]
        if isinstance(table, pd.DataFrame) and len(table) == 0:
            named = [*self.past_columns, *cfg.future_covariates, cfg.time_column, cfg.series_column]
            missing = [c for c in named if c is not None and c not in table.columns]
            if missing:
                raise DataError(
                    f"DataFrame: column '{missing[0]}' not found (columns: {', '.join(map(str, table.columns))})"
                )
            return self._frame("", np.zeros(0, np.int64), np.zeros((cfg.n_quantiles, 0, C), np.float32))
        fut_rows = H if cfg.future_covariates else 0
        sset = self.series(table, min_length=cfg.lookback, future_rows=fut_rows)
        ext, n_obs, times = self._extend(sset, fut_rows)
        win = self.windows(ext, first_rows)
        origins = np.asarray([off + n for off, n in zip(win.offsets, n_obs)])
        out_z = self.forecast_origins(win, origins)  # (S, H, C, Q)
        frames = [
            self._frame(
                s.id,
                times[i],
                self.scaler.inverse(s.id, out_z[i].transpose(2, 0, 1), slice(0, C)),  # values (Q, H, C)
                self.interval_bounds(
                    s.id, out_z[i][None, ..., cfg.point_index], win.targets(i)[None, n_obs[i] - L : n_obs[i]]
                ),
            )
            for i, s in enumerate(sset.series)
        ]
        df = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
        if plot:
            self._plot(sset.series[0], n_obs[0], df.iloc[:H], plot)
        return df

    def _extend(self, sset: SeriesSet, fut_rows: int) -> tuple[SeriesSet, list[int], list[np.ndarray]]:
        """Append H rows of future features (calendar from extrapolated times) to each series."""
        H, series, n_obs, times = self.config.horizon, [], [], []
        for s in sset.series:
            n = len(s.past) - fut_rows
            if s.time is None:
                t_fut = None
            else:
                t_fut = s.time[n:] if fut_rows else future_times(s.time[:n], H)
            past = np.concatenate([s.past[:n], np.full((H, s.past.shape[1]), np.nan, np.float32)])
            future = s.future
            if not fut_rows:
                cal = (
                    calendar_features(t_fut)
                    if t_fut is not None and self.config.calendar
                    else np.zeros((H, 0), np.float32)
                )
                future = np.concatenate([s.future, cal], axis=0)
            time = None if s.time is None else np.concatenate([s.time[:n], t_fut])
            series.append(replace(s, past=past, future=future, time=time))
            n_obs.append(n)
            times.append(t_fut if t_fut is not None else np.arange(n, n + H))
        return replace(sset, series=series), n_obs, times

    def interval_bounds(
        self, sid: str, point: np.ndarray, lookback: np.ndarray
    ) -> list[tuple[float, np.ndarray, np.ndarray]]:
        """``(level, lo, hi)`` (W, H, C) in original units of each conformal interval around the
        standardised point forecasts ``point`` (W, H, C) of series ``sid`` with standardised lookback
        windows (W, L, C) (none without ``--intervals``)."""
        if self.conformal is None:
            return []
        return self.conformal.bounds(self.scaler, sid, point, lookback, slice(0, self.dims["n_target"]))

    def _frame(
        self,
        sid: str,
        times: np.ndarray,
        values: np.ndarray,
        bounds: Sequence[tuple[float, np.ndarray, np.ndarray]] = (),
    ) -> pd.DataFrame:
        """values (Q, H, C) in original units -> one row per step; ``bounds``: each conformal level's
        (level, lo (1, H, C), hi (1, H, C)) -> ``<target>_lo<level>`` / ``<target>_hi<level>``."""
        cfg = self.config
        cols: dict[str, Any] = {}
        if cfg.series_column:
            cols[cfg.series_column] = [sid] * values.shape[1]
        cols[cfg.time_column or "step"] = times
        for c, name in enumerate(self.target_columns):
            cols[name] = values[cfg.point_index, :, c]
            for qi, q in enumerate(cfg.quantiles):
                cols[f"{name}_q{q:g}"] = values[qi, :, c]
            for level, lo, hi in bounds:
                cols[f"{name}_lo{level:g}"], cols[f"{name}_hi{level:g}"] = lo[0, :, c], hi[0, :, c]
        return pd.DataFrame(cols)

    def _plot(self, s: Any, n_obs: int, df: pd.DataFrame, path: str) -> None:
        from lstmkit.plots import plot_forecast

        cfg = self.config
        k = min(n_obs, max(4 * cfg.horizon, cfg.lookback))
        hist_t = s.time[n_obs - k : n_obs] if s.time is not None else np.arange(n_obs - k, n_obs)
        names = self.target_columns
        bands = {
            n: [
                (label, df[lo].to_numpy(), df[hi].to_numpy(), c)
                for label, lo, hi, c in band_columns(n, cfg.quantiles, cfg.intervals)
            ]
            for n in names
        }
        plot_forecast(
            path,
            hist_t,
            {n: s.past[n_obs - k : n_obs, c] for c, n in enumerate(names)},
            df[cfg.time_column or "step"].to_numpy(),
            {n: df[n].to_numpy() for n in names},
            bands,
        )

    def format_outputs(self, items: list[Any], outputs: list[pd.DataFrame], options: ForecastPredict) -> str:
        """CSV of each forecast (timestamps, targets, quantile columns)."""
        buf = io.StringIO()
        for df in outputs:
            df.to_csv(buf, index=False)
        return buf.getvalue()

    # ------------------------------------------------------------------ evaluate
    def evaluate_data(self, data: Any, options: ForecastEvaluate) -> dict[str, Any]:
        """Metrics of the model and the baselines over every window of ``options.part`` (stride 1)."""
        with naming(data):
            return self.evaluate_set(self.series(data), options.part, options.season)

    def season(self, sset: SeriesSet, season: int | None) -> int:
        """The seasonal-naive period: given, the model's, or one day of steps (0: none)."""
        s = self.config.season if season is None else season
        return s or day_season(sset, self.config.lookback)

    def evaluate_set(self, sset: SeriesSet, split: str = "test", season: int | None = None) -> dict[str, Any]:
        """The model and the baselines on every window of ``split`` (:func:`.evaluation.score_part`)."""
        return score_part(self, sset, split, self.season(sset, season))

    def format_metrics(self, m: dict[str, Any]) -> str:
        """The model and each baseline: mse / mae (standardised), in original units, MAPE, MASE,
        sMAPE (CRPS with quantiles); the intervals' coverage."""
        return f"{m['part']} part, {m['windows']} windows (stride 1):\n" + metrics_table(m)

    # ------------------------------------------------------------------ backtest
    def backtest(
        self, data: Table, part: str = "test", stride: int | None = None, plot: str | None = None
    ) -> tuple[pd.DataFrame, dict[str, Any]]:
        """Rolling-origin forecasts over ``part`` every ``stride`` steps (default: the horizon):
        the forecasts with the truth as a DataFrame, and their mse / mae."""
        opts = BacktestOptions(part=part, stride=stride, plot=plot)  # type: ignore[arg-type]
        with naming(data):
            return backtest(self, self.series(data), opts)

    # ------------------------------------------------------------------ lstmkit inspect
    @property
    def num_directions(self) -> int:
        return self.config.lstm.directions

    def inspect_sample(self, data: Table | None = None, index: int = 0) -> GateSample:
        """One lookback window: the last window of the ``index``-th series of ``data``, or (``data``
        None) the last window of the training table's first series, saved in the model folder."""
        L = self.config.lookback
        if data is None:
            if self.sample is None:
                raise DataError("this model folder holds no sample window; pass --data")
            return self.sample
        sset = self.series(data, min_length=L)
        if not 0 <= index < len(sset.series):
            raise DataError(f"--index {index}: {table_name(data)} has {len(sset.series)} series")
        return GateSample.last(sset.series[index], L, self.period)

    def step_labels(self, sample: GateSample) -> list[str]:
        """The lookback rows each encoder step reads, relative to the forecast origin t: ``t-96..t-73``."""
        L, p = self.config.lookback, self.config.patch_length
        steps = -(-L // p)  # ceil(L / p)
        pad = steps * p - L  # zero rows in front of the first patch
        labels = []
        for k in range(steps):
            lo, hi = max(0, k * p - pad) - L, (k + 1) * p - pad - 1 - L
            labels.append(f"t{lo}" if lo == hi else f"t{lo}..t{hi}")
        return labels

    def trace_gates(self, sample: GateSample | str | Path) -> list[Any]:
        """Encoder gates over one lookback window (a :class:`GateSample` or a table's last window).

        Returns the core's list of ``Gates`` (index ``layer * D + d``), each field (1, T, Hd) with
        T = ceil(L / patch) steps, of the first LSTM of the ensemble; with independent channels, the first
        target channel's sequence."""
        if not isinstance(sample, GateSample):
            sample = self.inspect_sample(sample, 0)
        P, n_user = len(self.past_columns), len(self.config.future_covariates)
        past = self.scaler.transform(sample.series_id, sample.past, slice(0, P))  # (L, P)
        H = self.config.horizon
        fut = np.concatenate([sample.future, np.zeros((H, sample.future.shape[1]), np.float32)])  # (L+H, F)
        if n_user:  # the head's future rows are not traced: zeros
            fut[:, :n_user] = self.scaler.transform(sample.series_id, fut[:, :n_user], slice(P, P + n_user))
        if self.period:
            if sample.phase is None:
                raise DataError("this model's sample window has no cycle phases; pass --data")
            ahead = (sample.phase[-1] + 1 + np.arange(H)) % self.period  # (H,)
            phase = np.concatenate([sample.phase, ahead]).astype(np.float32)  # (L+H,)
            fut = np.concatenate([fut, phase[:, None]], axis=1)  # (L+H, F+1)
        import torch

        x, f = torch.from_numpy(past)[None], torch.from_numpy(fut)[None]  # (1, L, P), (1, L+H, F)
        model: Any = self.model
        net = model.members[0]  # the first LSTM forecaster of the ensemble
        with torch.no_grad():
            x, f, _, _ = net.normalise(x, f)  # with independent channels (C, L, 1+P-C): one row per channel
            _, _, gates = net.encode(x[:1], f[:1], return_gates=True)
        return [type(g)(*(t[:1] for t in g)) for g in gates]
