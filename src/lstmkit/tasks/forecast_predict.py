"""The forecast predictor: evaluate (model + baselines, Informer protocol), predict, backtest, gates."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from lstmkit.data.timeseries import SeriesSet, Standardizer, calendar_features, future_times, load_table, note
from lstmkit.errors import DataError, LstmkitError
from lstmkit.tasks import forecast_baselines as base
from lstmkit.tasks.forecast_data import Prepared, WindowCollate, prepare
from lstmkit.tasks.forecast_model import ForecastNet, NetConfig

if TYPE_CHECKING:
    from lstmkit.tasks.forecast import ForecastConfig


@dataclass
class GateSample:
    """One raw lookback window: ``past`` (L, P), ``future`` (L, F), of series ``series_id``."""

    series_id: str
    past: np.ndarray
    future: np.ndarray

    def to_json(self) -> dict:
        return {"series_id": self.series_id, "past": self.past.tolist(), "future": self.future.tolist()}

    @classmethod
    def from_json(cls, d: dict) -> GateSample:
        return cls(
            str(d["series_id"]),
            np.asarray(d["past"], np.float32).reshape(len(d["past"]), -1),
            np.asarray(d["future"], np.float32).reshape(len(d["future"]), -1),
        )


class ForecastPredictor:
    """A trained forecaster with its scaler; every method takes a CSV/Parquet path (or a SeriesSet)."""

    def __init__(
        self,
        cfg: ForecastConfig,
        ncfg: NetConfig,
        net: ForecastNet,
        scaler: Standardizer,
        past_columns: list[str],
        future_columns: list[str],
        sample: GateSample | None = None,
    ):
        self.cfg, self.ncfg, self.net, self.scaler = cfg, ncfg, net.eval(), scaler
        self.past_columns, self.future_columns = list(past_columns), list(future_columns)
        self.sample = sample  # a raw lookback window for `lstmkit inspect`

    @property
    def target_columns(self) -> list[str]:
        return self.past_columns[: self.ncfg.n_target]

    @property
    def point_index(self) -> int:
        """Index of the quantile used as the point forecast (the one nearest 0.5)."""
        return self.ncfg.point_index

    # ------------------------------------------------------------------------------- data
    def load(self, data: str | Path | SeriesSet, *, min_length: int | None = None, future_rows: int = 0) -> SeriesSet:
        """Read ``data`` with the saved column settings; the columns must match training."""
        if isinstance(data, SeriesSet):
            return data
        need = self.cfg.lookback + self.cfg.horizon if min_length is None else min_length
        sset = load_table(data, self.cfg.column_spec(), min_length=need, future_rows=future_rows)
        if sset.past_columns != self.past_columns:
            raise DataError(
                f"{Path(data).name}: columns {sset.past_columns} differ from training ({self.past_columns})"
            )
        for n in sset.notes:
            note(n)
        return sset

    def _prepare(self, sset: SeriesSet) -> Prepared:
        return prepare(sset, self.scaler, self.cfg.split, len(self.cfg.future_covariates))

    @torch.no_grad()
    def forecast_origins(self, prep: Prepared, origins: np.ndarray, batch_size: int = 512) -> np.ndarray:
        """Standardised forecasts (W, H, C, Q) for global ``origins``."""
        collate = WindowCollate(prep, self.cfg.lookback, self.cfg.horizon)
        outs = [np.zeros((0, self.cfg.horizon, self.ncfg.n_target, self.ncfg.n_quantiles), np.float32)]
        for i in range(0, len(origins), batch_size):
            b = collate(origins[i : i + batch_size].tolist())
            outs.append(self.net(b.past, b.future).numpy())
        return np.concatenate(outs)

    def _season(self, sset: SeriesSet, season: int | None) -> int:
        """The seasonal-naive period: given, configured, or one day of steps (0: none)."""
        s = season if season is not None else self.cfg.season
        if s or sset.series[0].time is None or len(sset.series[0].time) < 3:
            return int(s or 0)
        step = pd.Series(pd.DatetimeIndex(sset.series[0].time)).diff().median()
        per_day = int(round(pd.Timedelta(days=1) / step)) if step > pd.Timedelta(0) else 0
        return per_day if 1 < per_day <= self.cfg.lookback else 0

    # --------------------------------------------------------------------------- evaluate
    def evaluate(self, data: str | Path | SeriesSet, split: str = "test", season: int | None = None) -> dict[str, Any]:
        """Metrics of the model and the baselines over every window of ``split`` (stride 1)."""
        if split not in ("train", "valid", "test"):
            raise LstmkitError(f"--split must be train, valid or test, got {split!r}")
        return self.evaluate_set(self.load(data), split, season)

    def evaluate_set(self, sset: SeriesSet, split: str = "test", season: int | None = None) -> dict[str, Any]:
        L, H, C = self.cfg.lookback, self.cfg.horizon, self.ncfg.n_target
        prep = self._prepare(sset)
        season = self._season(sset, season)
        zs = [prep.past[off : off + len(s.past), :C].numpy() for s, off in zip(sset.series, prep.offsets)]
        linear = base.RidgeLinear.fit([(z, prep.local_origins(i, "train", L, H)) for i, z in enumerate(zs)], L, H)
        names = ["model", "last_value", "linear"] + (["seasonal_naive"] if season else [])
        sums: dict[str, dict | None] = {k: None for k in names}
        n_windows, covered = 0, []
        for i, (s, z) in enumerate(zip(sset.series, zs)):
            o = prep.local_origins(i, split, L, H)
            if o.size == 0:
                continue
            n_windows += o.size
            out = self.forecast_origins(prep, o + prep.offsets[i])  # (W, H, C, Q)
            preds = {
                "model": out[..., self.point_index],
                "last_value": base.last_value(z, o, H),
                "linear": linear.predict(z, o),
            }
            if season:
                preds["seasonal_naive"] = base.seasonal_naive(z, o, H, season)
            true = base.windows(z, o, 0, H)
            true_raw = self.scaler.inverse(s.id, true, slice(0, C))
            for k, p in preds.items():
                p_raw = self.scaler.inverse(s.id, p.astype(np.float32), slice(0, C))
                sums[k] = base.add_sums(sums[k], base.error_sums(p, true, p_raw, true_raw))
            if len(self.cfg.quantiles) > 1:
                covered.append(((true >= out[..., 0]) & (true <= out[..., -1])).ravel())
        if n_windows == 0:
            raise DataError(f"the {split} split has no window of lookback {L} + horizon {H}")
        result: dict[str, Any] = {"split": split, "windows": int(n_windows), **base.finish(sums["model"])}
        if covered:
            result["interval_coverage"] = float(np.concatenate(covered).mean())
        result["baselines"] = {k: base.finish(sums[k]) for k in names[1:]}
        if season:
            result["baselines"]["seasonal_naive"]["season"] = season
        return result

    # ---------------------------------------------------------------------------- predict
    def predict(self, data: str | Path, out: str | Path | None = None, plot: str | Path | None = None) -> pd.DataFrame:
        """Forecast the H steps after the end of each series; optional CSV and PNG."""
        H, C = self.cfg.horizon, self.ncfg.n_target
        fut_rows = H if self.cfg.future_covariates else 0
        sset = self.load(data, min_length=self.cfg.lookback, future_rows=fut_rows)
        ext, n_obs, times = self._extend(sset, fut_rows)
        prep = self._prepare(ext)
        origins = np.asarray([off + n for off, n in zip(prep.offsets, n_obs)])
        out_z = self.forecast_origins(prep, origins)  # (S, H, C, Q)
        frames = []
        for i, s in enumerate(sset.series):
            frames.append(
                self._frame(s.id, times[i], self.scaler.inverse(s.id, out_z[i].transpose(2, 0, 1), slice(0, C)))
            )  # (Q, H, C)
        df = pd.concat(frames, ignore_index=True)
        if out:
            from lstmkit.io import atomic_write_text

            atomic_write_text(out, df.to_csv(index=False))
        if plot:
            self._plot_predict(sset.series[0], n_obs[0], df[df.index < H], plot)
        return df

    def _extend(self, sset: SeriesSet, fut_rows: int):
        """Append H rows of future features (calendar from extrapolated times) to each series."""
        H, series, n_obs, times = self.cfg.horizon, [], [], []
        for s in sset.series:
            n = len(s.past) - fut_rows
            t_fut = (
                future_times(s.time[:n], H)
                if s.time is not None and not fut_rows
                else (s.time[n:] if s.time is not None else None)
            )
            past = np.concatenate([s.past[:n], np.full((H, s.past.shape[1]), np.nan, np.float32)])
            future = s.future
            if not fut_rows:
                cal = calendar_features(t_fut) if self.cfg.calendar else np.zeros((H, 0), np.float32)
                future = np.concatenate([s.future, cal], axis=0)
            time = None if s.time is None else np.concatenate([s.time[:n], t_fut])
            series.append(replace(s, past=past, future=future, time=time))
            n_obs.append(n)
            times.append(t_fut if t_fut is not None else np.arange(n, n + H))
        return replace(sset, series=series), n_obs, times

    def _frame(self, sid: str, times: np.ndarray, values: np.ndarray) -> pd.DataFrame:
        """values (Q, H, C) in original units -> one row per step."""
        cols: dict[str, Any] = {}
        if self.cfg.series_column:
            cols[self.cfg.series_column] = [sid] * values.shape[1]
        cols[self.cfg.time_column or "step"] = times
        for c, name in enumerate(self.target_columns):
            cols[name] = values[self.point_index, :, c]
            for qi, q in enumerate(self.cfg.quantiles):
                cols[f"{name}_q{q:g}"] = values[qi, :, c]
        return pd.DataFrame(cols)

    def _plot_predict(self, s, n_obs: int, df: pd.DataFrame, path) -> None:
        from lstmkit.plots import plot_forecast

        k = min(n_obs, max(4 * self.cfg.horizon, self.cfg.lookback))
        hist_t = s.time[n_obs - k : n_obs] if s.time is not None else np.arange(n_obs - k, n_obs)
        fut_t = df[self.cfg.time_column or "step"].to_numpy()
        q = self.cfg.quantiles
        bands = (
            {n: (df[f"{n}_q{q[0]:g}"].to_numpy(), df[f"{n}_q{q[-1]:g}"].to_numpy()) for n in self.target_columns}
            if len(q) > 1
            else {}
        )
        plot_forecast(
            path,
            hist_t,
            {n: s.past[n_obs - k : n_obs, c] for c, n in enumerate(self.target_columns)},
            fut_t,
            {n: df[n].to_numpy() for n in self.target_columns},
            bands,
        )

    # --------------------------------------------------------------------------- backtest
    def backtest(
        self,
        data: str | Path,
        split: str = "test",
        stride: int | None = None,
        out: str | Path | None = None,
        plot: str | Path | None = None,
    ) -> tuple[pd.DataFrame, dict]:
        """Rolling-origin forecasts over ``split`` every ``stride`` steps (default: the horizon)."""
        L, H, C = self.cfg.lookback, self.cfg.horizon, self.ncfg.n_target
        stride = stride or H
        if stride < 1:
            raise LstmkitError(f"--stride must be >= 1, got {stride}")
        sset = self.load(data)
        prep = self._prepare(sset)
        frames, sums = [], None
        for i, s in enumerate(sset.series):
            o = prep.local_origins(i, split, L, H)[::stride]
            if o.size == 0:
                continue
            out_z = self.forecast_origins(prep, o + prep.offsets[i])  # (W, H, C, Q)
            pred_raw = self.scaler.inverse(s.id, out_z.transpose(0, 3, 1, 2), slice(0, C))  # (W, Q, H, C)
            true_raw = base.windows(s.past[:, :C], o, 0, H)  # (W, H, C)
            z = prep.past[prep.offsets[i] : prep.offsets[i] + len(s.past), :C].numpy()
            true_z = base.windows(z, o, 0, H)
            sums = base.add_sums(
                sums, base.error_sums(out_z[..., self.point_index], true_z, pred_raw[:, self.point_index], true_raw)
            )
            frames.append(self._backtest_frame(s, o, pred_raw, true_raw))
        if not frames:
            raise DataError(f"the {split} split has no window of lookback {L} + horizon {H}")
        df = pd.concat(frames, ignore_index=True)
        if out:
            from lstmkit.io import atomic_write_text

            atomic_write_text(out, df.to_csv(index=False))
        if plot:
            from lstmkit.plots import plot_backtest

            first = df[df["series"] == df["series"].iloc[0]] if "series" in df else df
            plot_backtest(plot, first, self.target_columns[0], self.cfg.time_column or "step")
        return df, {"split": split, "forecasts": int(len(df) // H), **base.finish(sums)}

    def _backtest_frame(self, s, origins, pred_raw, true_raw) -> pd.DataFrame:
        H = self.cfg.horizon
        rows = (origins[:, None] + np.arange(H)[None, :]).ravel()  # (W*H,)
        tcol = self.cfg.time_column or "step"
        cols: dict[str, Any] = {"series": [s.id] * rows.size} if self.cfg.series_column else {}
        cols["origin"] = np.repeat(s.time[origins] if s.time is not None else origins, H)
        cols[tcol] = s.time[rows] if s.time is not None else rows
        cols["h"] = np.tile(np.arange(1, H + 1), origins.size)
        for c, name in enumerate(self.target_columns):
            cols[name] = true_raw[..., c].ravel()
            cols[f"{name}_pred"] = pred_raw[:, self.point_index, :, c].ravel()
            for qi, q in enumerate(self.cfg.quantiles):
                cols[f"{name}_q{q:g}"] = pred_raw[:, qi, :, c].ravel()
        return pd.DataFrame(cols)

    # ------------------------------------------------------------------------------ gates
    @property
    def num_directions(self) -> int:
        return 2 if self.ncfg.bidirectional else 1

    def inspect_sample(self, data: str | Path | None = None, index: int = 0) -> GateSample:
        """One lookback window for ``lstmkit inspect``: the last window of the ``index``-th series of
        ``data``, or (``data`` None) the last training window saved in the model folder."""
        L = self.cfg.lookback
        if data is None:
            if self.sample is None:
                raise DataError("this model folder holds no sample window; pass --data")
            return self.sample
        sset = self.load(data, min_length=L)
        if not 0 <= index < len(sset.series):
            raise DataError(f"--index {index}: {Path(data).name} has {len(sset.series)} series")
        s = sset.series[index]
        return GateSample(s.id, s.past[-L:], s.future[-L:])

    @torch.no_grad()
    def trace_gates(self, sample: GateSample | str | Path) -> list:
        """Encoder gates over one lookback window (a :class:`GateSample` or a data file's last window).

        Returns the core's list of ``Gates`` (index ``layer * D + d``), each field (1, T, Hd) with
        T = ceil(L / patch) steps; with independent channels, the first target channel's sequence."""
        if not isinstance(sample, GateSample):
            sample = self.inspect_sample(sample, 0)
        P, n_user = len(self.past_columns), len(self.cfg.future_covariates)
        past = self.scaler.transform(sample.series_id, sample.past, slice(0, P))  # (L, P)
        fut = np.concatenate([sample.future, np.zeros((self.cfg.horizon, sample.future.shape[1]), np.float32)])
        if n_user:
            fut[:, :n_user] = self.scaler.transform(sample.series_id, fut[:, :n_user], slice(P, P + n_user))
        x, f = torch.from_numpy(past)[None], torch.from_numpy(fut)[None]  # (1, L, P), (1, L+H, F)
        loc, scale = self.net._norm_stats(x)
        x = (x - loc) / scale
        if self.ncfg.channel_independent:
            x, f, _ = self.net._split_channels(x, f, None)  # (C, L, 1+P-C): one row per target channel
        _, _, gates = self.net.encode(x[:1], f[:1], return_gates=True)
        return [type(g)(*(t[:1] for t in g)) for g in gates]
