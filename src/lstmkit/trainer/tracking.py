"""Following a training run in TensorBoard or MLflow (``--log-to``), besides history.csv.

The trainer always writes ``history.csv`` and ``loss.png`` into its folder; that is ``--log-to csv``
(the default), and nothing more is done. ``--log-to tensorboard`` also writes event files into
``<out>/tensorboard/`` (``tensorboard --logdir <out>``), ``--log-to mlflow`` logs to the MLflow
tracking server that ``MLFLOW_TRACKING_URI`` names (default ``./mlruns``), in the experiment of
``MLFLOW_EXPERIMENT_NAME``; a run started inside an active MLflow run is nested in it.

Logged: the resolved config (hyperparameters / params), every history row per epoch (train loss,
validation loss and metrics, learning rate; step = epoch) and the final plots. A resumed run goes
on where the checkpoint stopped (TensorBoard hides the steps written after it). Only the main
process logs (under torchrun). The packages are optional extras, imported only when chosen::

    pip install 'lstmkit[track]'     # tensorboard
    pip install 'lstmkit[mlflow]'    # mlflow
"""

from __future__ import annotations

import importlib
import json
import math
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lstmkit.errors import LstmkitError

if TYPE_CHECKING:
    from lstmkit.trainer.loop import Trainer

#: --log-to value -> (the module it needs, the pip extra that installs it)
PACKAGES = {"tensorboard": ("tensorboard", "track"), "mlflow": ("mlflow", "mlflow")}
TENSORBOARD_DIR = "tensorboard"


def require(log_to: str) -> None:
    """A one-line :class:`LstmkitError` (exit 2) when the package ``log_to`` needs is not installed."""
    if log_to not in PACKAGES:
        return
    module, extra = PACKAGES[log_to]
    try:
        importlib.import_module(module)
    except ImportError:
        raise LstmkitError(f"--log-to {log_to} needs the {module} package: pip install 'lstmkit[{extra}]'") from None


class Tracker:
    """The interface, and ``--log-to csv``: history.csv is the trainer's own, so nothing to do."""

    def start(self, config: Mapping[str, Any], done: Sequence[Mapping[str, float]] = ()) -> None:
        """Open the run with the resolved ``config``; ``done``: the epochs a resumed run already has."""

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        """Scalars of one epoch (``step`` = the epoch number)."""

    def artifact(self, path: Path, step: int) -> None:
        """A file of the finished run (a plot)."""

    def close(self, status: str = "FINISHED") -> None:
        """End the run (``FINISHED``, ``KILLED`` or ``FAILED``); a second call does nothing."""


class TensorBoardTracker(Tracker):
    """Event files in ``log_dir`` (``runs/<date>_<host>`` without a folder): one scalar per history
    column, the config as hparams and as text, each plot as an image."""

    def __init__(self, log_dir: Path | None, resumed: bool = False):
        self.log_dir, self.resumed = log_dir, resumed
        self.writer: Any = None

    def start(self, config: Mapping[str, Any], done: Sequence[Mapping[str, float]] = ()) -> None:
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams

        had_events = self.log_dir is not None and any(self.log_dir.glob("events.out.tfevents.*"))
        first = int(done[-1]["epoch"]) + 1 if done else 1
        purge = first if self.resumed and had_events else None  # hide the steps logged after the checkpoint
        self.writer = SummaryWriter(str(self.log_dir) if self.log_dir else None, purge_step=purge)
        flat = flat_config(config)
        metrics = {"train_loss": math.nan, "valid_loss": math.nan}
        for summary in hparams({k: _scalar(v) for k, v in flat.items()}, metrics):
            self.writer.file_writer.add_summary(summary)
        self.writer.add_text("config", "```\n" + json.dumps(config, indent=2, default=str) + "\n```")
        if not had_events:  # a run that switched to tensorboard on --resume: its earlier epochs too
            for row in done:
                self.log(row, int(row["epoch"]))

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        for key, value in epoch_scalars(metrics).items():
            self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def artifact(self, path: Path, step: int) -> None:
        import matplotlib.image

        image = matplotlib.image.imread(path)[..., :3]  # RGB floats in [0, 1]
        self.writer.add_image(f"plots/{path.stem}", image, step, dataformats="HWC")

    def close(self, status: str = "FINISHED") -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class MlflowTracker(Tracker):
    """One MLflow run (nested in an active one): params, metrics per epoch, config.json and plots."""

    def __init__(self, run_name: str | None):
        self.run_name = run_name
        self.mlflow: Any = None

    def start(self, config: Mapping[str, Any], done: Sequence[Mapping[str, float]] = ()) -> None:
        import mlflow

        self.mlflow = mlflow
        mlflow.start_run(run_name=self.run_name, nested=mlflow.active_run() is not None)
        mlflow.log_params({k: _scalar(v) for k, v in flat_config(config).items()})
        mlflow.log_dict(dict(config), "config.json")
        for row in done:  # a resumed run: the epochs before the checkpoint
            self.log(row, int(row["epoch"]))

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        self.mlflow.log_metrics(epoch_scalars(metrics), step=step)

    def artifact(self, path: Path, step: int) -> None:
        self.mlflow.log_artifact(str(path), artifact_path="plots")

    def close(self, status: str = "FINISHED") -> None:
        if self.mlflow is not None:
            self.mlflow.end_run(status=status)
            self.mlflow = None


def make_tracker(trainer: Trainer) -> Tracker:
    """The tracker ``trainer.cfg.log_to`` names (a no-op one on processes other than the main one)."""
    log_to, out = trainer.cfg.log_to, trainer.out_dir
    if log_to == "csv" or not trainer.ctx.is_main:
        return Tracker()
    require(log_to)
    if log_to == "tensorboard":
        log_dir = out / TENSORBOARD_DIR if out is not None else None
        if log_dir is not None and trainer.resume:
            _carry_events(trainer.resume_from, log_dir)
        return TensorBoardTracker(log_dir, resumed=trainer.resume)
    return MlflowTracker(_run_name(out))


def attach(trainer: Trainer) -> Tracker:
    """Start the run's tracker (after the trainer's set-up: a resumed history is known) and log
    through the trainer's hooks: each epoch's history row, then at the end the plots in its folder.
    The trainer closes it (``FAILED``) if training raises."""
    tracker = make_tracker(trainer)
    tracker.start(run_config(trainer), list(trainer.state.history))
    trainer.add_callback("on_epoch_end", lambda t: tracker.log(t.last_metrics, int(t.last_metrics["epoch"])))
    trainer.add_callback("on_train_end", lambda t: _finish(t, tracker))
    return tracker


def _finish(trainer: Trainer, tracker: Tracker) -> None:
    step = int(trainer.state.history[-1]["epoch"]) if trainer.state.history else 0
    if trainer.out_dir is not None and trainer.ctx.is_main:
        for png in sorted(trainer.out_dir.glob("*.png")):
            tracker.artifact(png, step)
    tracker.close("KILLED" if trainer.state.stopped == "interrupted" else "FINISHED")


def run_config(trainer: Trainer) -> dict[str, Any]:
    """The run's resolved config: the task, its settings and the trainer's (as in config.json)."""
    ident = trainer.identity
    task = {"task": ident["task"]} if "task" in ident else {}
    return {**task, **dict(ident.get("settings", {})), "train": trainer.cfg.to_dict()}


def flat_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested sections as dotted keys: ``{"train": {"lr": 0.001}}`` -> ``{"train.lr": 0.001}``."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            out.update(flat_config(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def epoch_scalars(row: Mapping[str, float]) -> dict[str, float]:
    """A history row's numbers but its epoch (the step) and the partial-epoch flag."""
    return {k: float(v) for k, v in row.items() if k not in ("epoch", "partial") and isinstance(v, (int, float))}


def _scalar(value: Any) -> bool | int | float | str:
    """A config value as a hyperparameter / param: lists, None and the like as JSON text."""
    return value if isinstance(value, (bool, int, float, str)) else json.dumps(value, default=str)


def _carry_events(source: Path | None, log_dir: Path) -> None:
    """A resume from the finished folder into a new one: bring its event files along."""
    if source is None or log_dir.exists() or not (source / TENSORBOARD_DIR).is_dir():
        return
    if (source / TENSORBOARD_DIR).resolve() != log_dir.resolve():
        shutil.copytree(source / TENSORBOARD_DIR, log_dir)


def _run_name(out: Path | None) -> str | None:
    """The model folder's name (the trainer writes into its hidden staging sibling ``.<name>.partial``)."""
    if out is None:
        return None
    name = out.name
    return name[1 : -len(".partial")] if name.startswith(".") and name.endswith(".partial") else name
