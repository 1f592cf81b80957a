"""Time-series forecasting: ``lstmkit forecast train|evaluate|predict|backtest``.

Python API (the CLI calls exactly these)::

    from lstmkit.tasks.forecast import ForecastConfig, train, load_predictor
    metrics = train("ETTh1.csv", ForecastConfig(target=["OT"], time_column="date", split="8640,2880,2880"),
                    TrainConfig(epochs=10), out="runs/etth1")
    p = load_predictor("runs/etth1")
    p.evaluate("ETTh1.csv", split="test")     # model + baselines, Informer protocol
    p.predict("ETTh1.csv")                    # DataFrame of the H steps after the data
    p.backtest("ETTh1.csv", split="test")     # rolling-origin forecasts

All model arithmetic happens on the standardised scale (train-split statistics per series and
column, saved as ``scaler.json``); outputs are inverted to original units.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lstmkit.data.timeseries import (
    ColumnSpec,
    FeatureMode,
    FillMethod,
    SeriesSet,
    Standardizer,
    load_table,
    note,
    parse_split,
)
from lstmkit.errors import DataError, LstmkitError
from lstmkit.tasks.forecast_data import Batch, WindowCollate, fit_scaler, prepare
from lstmkit.tasks.forecast_model import Decoder, ForecastNet, NetConfig, Norm
from lstmkit.tasks.forecast_predict import ForecastPredictor, GateSample

TASK = "forecast"


@dataclass
class ForecastConfig:
    """Every data and model setting of a forecaster (saved in config.json under "forecast")."""

    target: list[str]
    features: FeatureMode = "S"
    covariates: list[str] = field(default_factory=list)
    future_covariates: list[str] = field(default_factory=list)
    time_column: str | None = None
    series_column: str | None = None
    calendar: bool = False
    fill: FillMethod = "none"
    lookback: int = 96
    horizon: int = 24
    split: str = "0.7,0.1,0.2"
    decoder: Decoder = "direct"
    quantiles: list[float] = field(default_factory=list)
    norm: Norm = "revin"
    channel_independent: bool = True
    patch: int = 0  # 0: auto, lookback // 4 (4 LSTM steps; 24 at lookback 96 measured best on ETTh1)
    highway: bool = False
    hidden_size: int = 128
    num_layers: int = 1
    dropout: float = 0.0
    bidirectional: bool = False
    season: int = 0  # 0: one day of steps when the time column allows, else no seasonal baseline

    def __post_init__(self) -> None:
        self.quantiles = sorted(float(q) for q in self.quantiles)
        if self.patch < 0:
            raise LstmkitError(f"--patch must be >= 0 (0: auto), got {self.patch}")
        for name in ("lookback", "horizon", "hidden_size", "num_layers"):
            if int(getattr(self, name)) < 1:
                raise LstmkitError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if any(not 0 < q < 1 for q in self.quantiles):
            raise LstmkitError(f"--quantiles must lie in (0, 1), got {self.quantiles}")
        for name, allowed in (
            ("features", ("S", "M", "MS")),
            ("decoder", ("direct", "seq2seq")),
            ("norm", ("none", "last", "revin")),
            ("fill", ("none", "ffill", "interpolate", "drop")),
        ):
            if getattr(self, name) not in allowed:
                raise LstmkitError(f"--{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        parse_split(self.split)

    def column_spec(self) -> ColumnSpec:
        return ColumnSpec(
            list(self.target),
            self.features,
            list(self.covariates),
            list(self.future_covariates),
            self.time_column,
            self.series_column,
            self.calendar,
            self.fill,
        )


def net_config(cfg: ForecastConfig, sset: SeriesSet) -> NetConfig:
    return NetConfig(
        n_past=len(sset.past_columns),
        n_target=sset.n_target,
        n_future=len(sset.future_columns),
        lookback=cfg.lookback,
        horizon=cfg.horizon,
        hidden_size=cfg.hidden_size,
        num_layers=cfg.num_layers,
        dropout=cfg.dropout,
        bidirectional=cfg.bidirectional,
        decoder=cfg.decoder,
        n_quantiles=max(1, len(cfg.quantiles)),
        norm=cfg.norm,
        point_index=int(np.argmin([abs(q - 0.5) for q in cfg.quantiles])) if cfg.quantiles else 0,
        channel_independent=cfg.channel_independent and sset.n_target > 1,
        patch=cfg.patch or max(1, cfg.lookback // 4),
        highway=cfg.highway,
    )


def make_loss(quantiles: Sequence[float]):
    """(model, batch) -> mean loss: MSE, or the pinball loss averaged over quantiles."""
    q = torch.tensor(list(quantiles) or [0.5])

    def loss_fn(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
        pred = model(batch.past, batch.future, batch.y if model.training else None)  # (B, H, C, Q)
        if not quantiles:
            return torch.nn.functional.mse_loss(pred[..., 0], batch.y)
        err = batch.y.unsqueeze(-1) - pred  # (B, H, C, Q)
        qq = q.to(pred.device)
        return torch.maximum(qq * err, (qq - 1) * err).mean()

    return loss_fn


def train(
    data: str | Path, cfg: ForecastConfig, train_cfg, out: str | Path, *, valid: str | Path | None = None
) -> dict:
    """Train a forecaster on ``data`` (train/valid split by ``cfg.split``) and write the model folder ``out``.

    Returns the metrics written to ``metrics.json`` (the valid loss and the test-split evaluation
    with baselines when the test split has windows).
    """
    from lstmkit.io import save_model
    from lstmkit.train import Trainer

    sset = load_table(data, cfg.column_spec(), min_length=cfg.lookback + cfg.horizon)
    for n in sset.notes:
        note(n)
    n_user = len(cfg.future_covariates)
    scaler = fit_scaler(sset, cfg.split, n_user)
    prep = prepare(sset, scaler, cfg.split, n_user)
    tr = prep.origins("train", cfg.lookback, cfg.horizon)
    va = prep.origins("valid", cfg.lookback, cfg.horizon)
    if valid is not None:
        raise LstmkitError("--valid: forecast takes the validation rows from --split of --data")
    if tr.size == 0:
        raise DataError(
            f"{Path(data).name}: the train split has no window of lookback {cfg.lookback} + horizon {cfg.horizon}"
        )
    torch.manual_seed(train_cfg.seed)
    ncfg = net_config(cfg, sset)
    net = ForecastNet(ncfg)
    trainer = Trainer(
        net,
        train_cfg,
        tr.tolist(),
        WindowCollate(prep, cfg.lookback, cfg.horizon),
        make_loss(cfg.quantiles),
        valid_set=va.tolist() if va.size else None,
        out_dir=out,
    )
    result = trainer.fit()
    net = getattr(net, "module", net).cpu().eval()
    config = {
        "forecast": cfg,
        "net": ncfg,
        "train": train_cfg,
        "columns": {"past": sset.past_columns, "future": sset.future_columns, "n_target": sset.n_target},
    }
    s0 = sset.series[0]
    sample = GateSample(s0.id, s0.past[-cfg.lookback :], s0.future[-cfg.lookback :])
    transforms = {"scaler": scaler.to_json(), "sample": sample.to_json()}
    save_model(out, task=TASK, config=config, model=net, transforms=transforms)
    metrics = {"valid": {k: float(v) for k, v in (result.best_metrics or {}).items()}}
    predictor = ForecastPredictor(cfg, ncfg, net, scaler, sset.past_columns, sset.future_columns, sample)
    if prep.origins("test", cfg.lookback, cfg.horizon).size:
        metrics["test"] = predictor.evaluate_set(sset, "test")
    save_model(out, task=TASK, config=config, model=net, transforms=transforms, metrics=metrics)
    return metrics


def load_predictor(folder: str | Path) -> ForecastPredictor:
    """The predictor of a saved forecast model folder (``lstmkit.load`` dispatches here)."""
    from lstmkit.io import read_folder

    mf = read_folder(folder)
    if mf.task != TASK:
        raise LstmkitError(f"{folder}: a '{mf.task}' model, not a forecast model")
    try:
        cfg = ForecastConfig(**mf.config["forecast"])
        ncfg = NetConfig(**mf.config["net"])
        cols = mf.config["columns"]
        scaler = Standardizer.from_json(mf.transforms["scaler"])
        sample = GateSample.from_json(mf.transforms["sample"]) if "sample" in mf.transforms else None
    except (KeyError, TypeError) as exc:
        from lstmkit.errors import ModelFolderError

        raise ModelFolderError(f"{folder}/config.json: not a forecast config ({exc})") from None
    net = mf.load_into(ForecastNet(ncfg))
    return ForecastPredictor(cfg, ncfg, net, scaler, cols["past"], cols["future"], sample)


__all__ = ["ForecastConfig", "ForecastPredictor", "Batch", "train", "load_predictor"]
