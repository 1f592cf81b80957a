"""``forecast`` on the task contract: prepare (read, resolve, fit the scaler, cut windows), build, loss.

::

    import lstmkit
    result = lstmkit.train("forecast", "ETTh1.csv", out="runs/etth1", time_column="date",
                           split=[8640, 2880, 2880], epochs=10)        # target: the last column, OT
    p = lstmkit.load("runs/etth1")
    p.evaluate("ETTh1.csv", part="test")     # model + baselines, Informer protocol
    p.predict("ETTh1.csv")                    # DataFrame of the H steps after the data
    p.backtest("ETTh1.csv", part="test")     # rolling-origin forecasts

Validation and test windows come from ``--split`` of ``--data`` (never a separate ``--valid``);
``metrics.json`` holds ``valid`` and ``test``: the model and the baselines on every window of those
splits, stride 1 (``--test FILE`` replaces ``test`` by FILE's test split).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from lstmkit.data.timeseries import split_bounds, table_name, window_origins
from lstmkit.errors import DataError, LstmkitError
from lstmkit.tasks.base import Prepared, Task
from lstmkit.tasks.forecast.baselines import fit_ridge
from lstmkit.tasks.forecast.config import SPEC, VALID_MESSAGE, ForecastConfig
from lstmkit.tasks.forecast.conformal import Conformal, residuals
from lstmkit.tasks.forecast.data import (
    Batch,
    GateSample,
    WindowCollate,
    Windows,
    fit_scaler,
    naming,
    read_series,
    resolve,
    standardise,
)
from lstmkit.tasks.forecast.model import ForecastNet
from lstmkit.tasks.forecast.predict import ForecastPredictor
from lstmkit.trainer.distributed import unwrap


def fit_linear_maps(model: ForecastNet, win: Windows, parts: tuple[str, ...]) -> None:
    """``model``'s linear maps (:meth:`ForecastNet.start_linear`): one ridge regression per target channel
    on the windows ``win`` of ``parts``, relative to each window's last value, with a bias per cycle phase
    when the model has a cycle."""
    L, H, W = model.lookback, int(model.lin_bias.shape[1]), model.period
    maps = [fit_ridge(win, L, H, relative=True, channels=[c], parts=parts, period=W) for c in range(model.n_target)]
    w = torch.as_tensor(np.stack([m.weight for m in maps]), dtype=torch.float32)  # (C, L + 1 + W, H)
    # rows: the lookback's L weights, the bias, then one bias per phase
    model.start_linear(w[:, :L].transpose(1, 2).contiguous(), w[:, L], w[:, L + 1 :] if W else None)


class Forecast(Task[ForecastConfig]):
    """``--loss`` (MAE or MSE; the pinball loss averaged over ``--quantiles``) of multi-step forecasts on
    the standardised scale; the best epoch by the validation split's loss."""

    spec = SPEC
    report_cost = 3.0  # the valid and the test split, each with its baselines
    Predictor = ForecastPredictor

    def check(self, data: Any, valid: Any = None) -> None:
        if valid is not None:
            raise LstmkitError(VALID_MESSAGE)
        cfg = self.config
        sset = read_series(data, cfg)
        with naming(data):
            for s in sset.series:
                lo, hi = split_bounds(len(s.past), cfg.split)["train"]
                if window_origins(len(s.past), lo, hi, cfg.lookback, cfg.horizon).size:
                    return
        raise DataError(
            f"{table_name(data)}: the train split has no window of lookback {cfg.lookback} + horizon {cfg.horizon}"
        )

    def prepare(self, data: Any, valid: Any = None) -> Prepared:
        if valid is not None:
            raise LstmkitError(VALID_MESSAGE)
        sset = read_series(data, self.config)
        cfg = self.config = resolve(self.config, sset)
        L, H, n_user = cfg.lookback, cfg.horizon, len(cfg.future_covariates)
        period = cfg.season if cfg.cycle else 0  # the learnt cycle's (none without a season)
        with naming(data):
            scaler = fit_scaler(sset, cfg.split, n_user)
            win = standardise(sset, scaler, cfg.split, n_user, period)
        tr, va = win.origins("train", L, H), win.origins("valid", L, H)
        if tr.size == 0:
            raise DataError(f"{table_name(data)}: the train split has no window of lookback {L} + horizon {H}")
        if cfg.intervals and va.size == 0:
            raise DataError(f"{table_name(data)}: --intervals are calibrated on the valid part, which has no window")
        dims = {
            "n_past": len(sset.past_columns),
            "n_target": sset.n_target,
            "n_future": len(sset.future_columns),
            "cycle": period,
        }
        transforms = {
            "scaler": scaler.to_json(),
            "columns": {"past": sset.past_columns, "future": sset.future_columns},
            "sample": GateSample.last(sset.series[0], L, period).to_json(),
        }
        self.prepared = Prepared(
            train=tr.tolist(),
            valid=va.tolist() or None,
            collate=WindowCollate(win, L, H),
            dims=dims,
            transforms=transforms,
            extra={"series": sset, "windows": win},
        )
        return self.prepared

    def build(self, dims: Mapping[str, Any]) -> nn.Module:
        return ForecastNet(self.config, dims)

    def init(self, model: nn.Module, prep: Prepared) -> None:
        """The linear maps: ridge regression on the training windows, relative to each window's last
        value, one per target channel."""
        self.fit_linear(model, prep, ("train",))

    def fit_linear(self, model: nn.Module, prep: Prepared, parts: tuple[str, ...]) -> None:
        """Each target channel's linear map fitted in closed form on the windows of ``parts``."""
        assert isinstance(model, ForecastNet)
        fit_linear_maps(model, prep.extra["windows"], parts)

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """``--loss`` of the point forecast (mean |e| or mean e², e = y - ŷ), or the pinball loss
        ``mean(max(q e, (q - 1) e))``, e = y - ŷ_q, with ``--quantiles``.
        Training: each member's own loss, averaged over the members (they learn independently);
        evaluation: the loss of the combined forecast, the one early stopping should judge."""
        if model.training:
            pred = model(batch.past, batch.future, batch.y, members=True)  # (K, B, H, C, Q)
        else:
            pred = model(batch.past, batch.future)  # (B, H, C, Q)
        quantiles = self.config.quantiles
        if not quantiles:
            fn = nn.functional.l1_loss if self.config.loss == "mae" else nn.functional.mse_loss
            return fn(pred[..., 0], batch.y.expand_as(pred[..., 0]))
        err = batch.y.unsqueeze(-1) - pred  # (K, B, H, C, Q)
        q = torch.tensor(quantiles, device=pred.device)  # (Q,)
        return torch.maximum(q * err, (q - 1) * err).mean()

    def callbacks(self) -> list[Any]:
        """When training ends (best weights restored): the linear map's weight fitted on the valid
        windows (``--linear-weight none``), the split-conformal calibration (``--intervals``), then the
        linear maps fitted again on train + valid (``--refit-linear``)."""
        cfg = self.config
        out = [("on_train_end", self.fit_mix)] if cfg.linear_weight is None else []
        out += [("on_train_end", self.calibrate)] if cfg.intervals else []
        return out + ([("on_train_end", self.refit_linear)] if cfg.refit_linear else [])

    def refit_linear(self, trainer: Any) -> None:
        """The linear maps on the train and valid windows (unchanged without valid windows)."""
        if self.prepared.valid:
            self.fit_linear(unwrap(trainer.model), self.prepared, ("train", "valid"))

    def fit_mix(self, trainer: Any) -> None:
        """w of :meth:`ForecastNet.fit_mix` on the valid windows (kept at 0.5 without any)."""
        model, origins = unwrap(trainer.model), self.prepared.valid or []
        assert isinstance(model, ForecastNet)
        device = next(model.parameters()).device
        batches = (self.prepared.collate(list(origins[i : i + 512])) for i in range(0, len(origins), 512))
        was_training = model.training
        model.eval()
        try:
            model.fit_mix((b.past.to(device), b.future.to(device), b.y.to(device)) for b in batches)
        finally:
            model.train(was_training)

    def calibrate(self, trainer: Any) -> None:
        """The split-conformal half-widths from the valid windows (:mod:`.conformal`): transform ``conformal``."""
        prep, cfg = self.prepared, self.config
        kind, season = cfg.interval_scale, cfg.season
        r = residuals(trainer.model, prep.collate, prep.valid or [], cfg.point_index, kind, season)  # (n, H, C)
        prep.transforms["conformal"] = Conformal.calibrate(r, cfg.intervals, kind, season).to_json()

    def report(self, predictor: Any, prep: Prepared, result: Any) -> dict[str, Any]:
        """``valid`` and ``test``: the model and the baselines on every window of those splits of --data."""
        cfg, sset = self.config, prep.extra["series"]
        win = predictor.windows(sset)
        parts = {
            part: predictor.evaluate(sset, part=part)
            for part in ("valid", "test")
            if win.origins(part, cfg.lookback, cfg.horizon).size
        }
        return {**parts, "linear_weight": round(float(predictor.model.mix), 4)}


TASK = Forecast
