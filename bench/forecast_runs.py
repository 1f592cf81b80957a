"""The forecast benchmark's data sets, cells and runs (imported by ``bench/forecast.py``).

A cell is one data set × features (S: the target alone; M: every numeric column in and out) ×
horizon, lookback 96. Every cell trains ``lstmkit.train("forecast", ...)`` with the **defaults**:
only what describes the data is given (target, time column, split, the seasonal-naive season) and
the budget (``max_time``, the whole command: training, the linear map's weight, the final evaluation).
The test metrics are the ones that training run's final evaluation wrote (``metrics.json``):
the model and the baselines (last value, seasonal naive, the ridge linear map L -> H fitted on the
train split, all channels pooled) on every test window, stride 1, standardised scale.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


@dataclass(frozen=True)
class DataSet:
    name: str
    file: str
    target: str
    split: tuple[float, ...]
    time_column: str | None
    season: int
    role: str  # "select": chose the defaults; "confirm": not looked at while choosing
    note: str

    @property
    def path(self) -> Path:
        return SHARED / self.file


DATASETS = {
    d.name: d
    for d in [
        DataSet(
            "ettm1",
            "ett/ETTm1.csv",
            "OT",
            (34560, 11520, 11520),
            "date",
            96,
            "select",
            "15-min, 7 columns; Informer split 12/4/4 months",
        ),
        DataSet(
            "weather",
            "weather/weather.csv",
            "T (degC)",
            (0.7, 0.1, 0.2),
            None,
            144,
            "select",
            "10-min, 21 columns; rows in file order (its date column repeats one timestamp, so no time "
            "column); season 144 = one day",
        ),
        DataSet(
            "etth1",
            "ett/ETTh1.csv",
            "OT",
            (8640, 2880, 2880),
            "date",
            24,
            "confirm",
            "hourly, 7 columns; Informer split 12/4/4 months",
        ),
        DataSet(
            "sp500",
            "sp500/sp500-2000.csv",
            "close",
            (0.7, 0.1, 0.2),
            "date",
            5,
            "confirm",
            "daily prices (not returns), 6 columns with volume; season 5 = a trading week",
        ),
    ]
}


@dataclass(frozen=True)
class Cell:
    data: str
    features: str
    horizon: int

    @property
    def name(self) -> str:
        return f"{self.data}-{self.features}-{self.horizon}"


#: --variant NAME: one change to the defaults, measured after the loss was chosen (same rule, same cells).
#: ``cycle-off`` is the default before --cycle; the others were measured then, against it, so they keep
#: ``cycle=False`` to rerun as they ran
BEFORE_CYCLE: dict[str, Any] = {"cycle": False}
VARIANTS: dict[str, dict[str, Any]] = {
    "cycle-off": BEFORE_CYCLE,
    "ema-0.99": {"ema": 0.99, **BEFORE_CYCLE},  # the trainer's moving average of the weights
    "ema-0.999": {"ema": 0.999, **BEFORE_CYCLE},
    "lr-5e-4": {"lr": 5e-4, **BEFORE_CYCLE},
    "lr-2e-3": {"lr": 2e-3, **BEFORE_CYCLE},
    "hidden-64": {"hidden_size": 64, **BEFORE_CYCLE},
    "hidden-256": {"hidden_size": 256, **BEFORE_CYCLE},
    "patch-12": {"patch": 12, **BEFORE_CYCLE},
    "batch-64": {"batch_size": 64, **BEFORE_CYCLE},
}
CELLS = [Cell(d, f, h) for d in DATASETS for f in ("S", "M") for h in (24, 96)]
CELL = {c.name: c for c in CELLS}


def train_cell(which: Cell, out: Path, max_time: float, seed: int = 0, **overrides: Any) -> dict[str, Any]:
    """Train the cell ``which`` into ``out`` (defaults + ``overrides``, which may set ``cell``: the recurrent
    cell); returns the record saved as bench.json."""
    import lstmkit

    ds = DATASETS[which.data]
    load0 = os.getloadavg()[0]
    t0, c0 = time.monotonic(), time.process_time()
    res = lstmkit.train(
        "forecast",
        ds.path,
        out=out,
        overwrite=True,
        quiet=True,
        target=[ds.target],
        features=which.features,
        horizon=which.horizon,
        lookback=96,
        split=list(ds.split),
        time_column=ds.time_column,
        season=ds.season,
        max_time=max_time,
        seed=seed,
        device="cpu",
        **overrides,
    )
    wall, cpu = time.monotonic() - t0, time.process_time() - c0
    metrics, after = res.metrics, False
    if "test" not in metrics:  # the budget left no time for the final evaluation: evaluated afterwards
        p = lstmkit.load(out)
        metrics = {**metrics, **{part: p.evaluate(ds.path, part=part) for part in ("valid", "test")}}
        metrics["linear_weight"] = round(float(p.model.mix), 4)  # fitted when training ended, saved with the model
        after = True
    record = {
        "cell": which.name,
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "threads": torch.get_num_threads(),
        "load_start": load0,
        "load_end": os.getloadavg()[0],
        "epochs_run": res.metrics["training"]["epochs_run"],
        "best_epoch": res.best_epoch,
        "stopped": res.stopped,
        "evaluated_after_budget": after,
        "linear_weight": metrics.get("linear_weight"),
        "overrides": overrides,
        "max_time": max_time,
        "valid": metrics.get("valid"),
        "test": metrics["test"],
    }
    (out / "bench.json").write_text(json.dumps(record, indent=2, default=str))
    return record


@torch.no_grad()
def _windows(p: Any, cell: Cell) -> Any:
    """The predictor ``p``'s standardised windows of ``cell``'s data set."""
    return p.windows(p.series(str(DATASETS[cell.data].path)))


@torch.no_grad()  # scoring only: no autograd graph over every window
def _forecasts(
    out: Path | Any, cell: Cell, win: Any = None
) -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Per part: the members' point forecasts (K, W, H, C), the linear map's (W, H, C) and the truth, of
    the model folder ``out`` (or a loaded predictor) on ``win`` (default: the windows of ``cell``)."""
    import lstmkit
    from lstmkit.tasks.forecast.data import WindowCollate

    p = lstmkit.load(out) if isinstance(out, (str, Path)) else out
    cfg, net = p.config, p.model
    win = _windows(p, cell) if win is None else win
    collate = WindowCollate(win, cfg.lookback, cfg.horizon)
    parts = {}
    for part in ("valid", "test"):
        origins = win.origins(part, cfg.lookback, cfg.horizon)
        m, lin, y = [], [], []
        for i in range(0, len(origins), 1024):
            b = collate(origins[i : i + 1024].tolist())
            m.append(torch.stack([k(b.past, b.future)[..., cfg.point_index] for k in net.members]))  # (K, B, H, C)
            lin.append(net.linear_forecast(b.past, b.future))  # (B, H, C)
            y.append(b.y)
        parts[part] = (torch.cat(m, 1).double(), torch.cat(lin).double(), torch.cat(y).double())
    return parts


def combinations(out: Path, cell: Cell) -> dict[str, dict[str, float]]:
    """The selection measurements of a model trained with several members: valid and test MSE of the
    first member alone and of the members' mean, each with the linear map at weight 0 (the LSTM alone),
    0.5, and the least-squares weight fitted on valid; and of the linear map alone."""
    parts = _forecasts(out, cell)
    (mv, lv, yv), (mt, lt, yt) = parts["valid"], parts["test"]

    def mse(a: torch.Tensor, b: torch.Tensor) -> float:
        return float((a - b).square().mean())

    rows = {"linear map alone": {"valid": mse(lv, yv), "test": mse(lt, yt)}}
    for label, sel in (("1 LSTM", [0]), (f"{len(mv)} LSTMs", list(range(len(mv))))):
        a, b = mv[sel].mean(0), mt[sel].mean(0)
        d = lv - a
        w = float(((d * (yv - a)).sum() / d.square().sum()).clamp(0, 1))
        for wl, ww in (("alone", 0.0), ("+ linear 0.5", 0.5), ("+ linear fitted", w)):
            key = f"{label} {wl}"
            rows[key] = {"valid": mse((1 - ww) * a + ww * lv, yv), "test": mse((1 - ww) * b + ww * lt, yt), "w": ww}
    return rows


def refit_check(out: Path, cell: Cell) -> dict[str, dict[str, float]]:
    """Test MSE of a trained model's linear maps fitted on the train windows and on train + valid
    (``--refit-linear``), alone and in the model's forecast at its own w."""
    import lstmkit
    from lstmkit.tasks.forecast.task import fit_linear_maps

    p = lstmkit.load(out)
    net, w = p.model, float(p.model.mix)
    win = _windows(p, cell)
    rows = {}
    for label, parts in (("train", ("train",)), ("train + valid", ("train", "valid"))):
        fit_linear_maps(net, win, parts)
        m, lin, y = _forecasts(p, cell, win)["test"]
        model = (1 - w) * m.mean(0) + w * lin
        rows[label] = {"linear": float((lin - y).square().mean()), "model": float((model - y).square().mean())}
    return rows


def _load_model(out: Path) -> Any:
    """The predictor of the model folder ``out``; a ``cycle-lstm`` folder (commit 2d46eca: a cycle in the
    LSTMs, none in the linear map) has no ``lin_phase`` and loads with zero biases per phase, which is
    the model it was."""
    import lstmkit
    from lstmkit import tasks
    from lstmkit.errors import ModelFolderError
    from lstmkit.io import read_folder

    try:
        return lstmkit.load(out)
    except ModelFolderError:  # it names the missing tensor
        from safetensors.torch import load_file

        mf, cls = read_folder(out), tasks.task_class("forecast")
        cfg = cls.spec.config.from_dict(mf.config)
        model = cls(cfg).build(mf.dims)
        missing = model.load_state_dict(load_file(out / "model.safetensors"), strict=False).missing_keys
        if missing != ["lin_phase"]:
            raise
        return cls.Predictor(cfg, model.eval(), mf.dims, mf.transforms)


def valid_train_maps(out: Path, cell: Cell) -> float:
    """Validation MSE of a trained model with its linear maps fitted on the train windows only (as they
    were when w was fitted): out-of-sample, unlike metrics.json's valid score after ``--refit-linear``."""
    from lstmkit.tasks.forecast.task import fit_linear_maps

    p = _load_model(out)
    win = _windows(p, cell)
    fit_linear_maps(p.model, win, ("train",))
    m, lin, y = _forecasts(p, cell, win)["valid"]
    w = float(p.model.mix)
    return float(((1 - w) * m.mean(0) + w * lin - y).square().mean())


def ratio_stats(values: list[float]) -> str:
    """``mean (min–max)`` of a list of ratios."""
    v = np.asarray(values)
    return f"{v.mean():.3f} ({v.min():.3f}–{v.max():.3f})" if v.size else "-"
