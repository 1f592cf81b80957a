"""The trainer's settings: one declaration, nested in every task's config as its ``train`` section.

Torch-free on purpose: the command line reads it to build ``--help`` without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lstmkit.config import Settings, setting

Optimizer = Literal["adamw", "sgd"]
Schedule = Literal["none", "cosine", "plateau"]
Mode = Literal["min", "max"]
Device = Literal["auto", "cpu", "cuda"]
LogTo = Literal["csv", "tensorboard", "mlflow"]


@dataclass
class TrainConfig(Settings):
    """Every setting of :class:`lstmkit.trainer.Trainer` (a task's defaults come from its ``section``).

    ``schedule="plateau"`` halves the learning rate when ``monitor`` has not improved for
    ``max(1, patience // 2)`` epochs; ``"cosine"`` anneals it per epoch to 0 at ``epochs``.
    """

    title = "training"

    epochs: int = setting(20, ge=1, le=1_000_000, help="maximum number of passes over the training data")
    batch_size: int = setting(32, ge=1, le=10_000_000, help="global batch size (split across processes under torchrun)")
    lr: float = setting(1e-3, gt=0, help="learning rate")
    optimizer: Optimizer = setting("adamw", help="optimizer")
    momentum: float = setting(0.0, ge=0, help="SGD momentum (ignored by AdamW)")
    weight_decay: float = setting(0.0, ge=0, help="weight decay: decoupled for AdamW, L2 for SGD")
    l1: float = setting(0.0, ge=0, help="coefficient of an L1 penalty l1·Σ|w| added to the loss")
    schedule: Schedule = setting(
        "none", help="learning-rate schedule: cosine to 0 over --epochs; plateau halves it when --monitor stalls"
    )
    clip_grad: float = setting(1.0, ge=0, help="maximum global gradient norm (0 = no clipping)")
    ema: float = setting(
        0.0,
        ge=0,
        lt=1,
        help="decay of an exponential moving average of the weights, updated after every step (e.g. 0.999: "
        "about the last 1000 steps); validation, the best epoch and the saved model use the averaged weights "
        "(0: off, the raw weights)",
    )
    patience: int = setting(5, ge=0, help="stop after this many epochs without a better --monitor (0 = never)")
    monitor: str = setting("valid_loss", help="validation metric that picks the best epoch and drives early stopping")
    monitor_mode: Mode = setting("min", help="whether a smaller (min) or larger (max) --monitor is better")
    max_time: float | None = setting(
        None,
        gt=0,
        metavar="SECONDS",
        help="time budget in seconds: training stops cleanly (best model saved; --resume continues)",
    )
    seed: int = setting(0, ge=0, le=2**63 - 1, help="random seed: the same seed gives the same metrics on CPU")
    device: Device = setting("auto", help="auto (CUDA when available), cpu or cuda (bf16 autocast on CUDA)")
    log_to: LogTo = setting(
        "csv",
        help="where the run is logged besides history.csv: csv (nothing more), tensorboard (OUT/tensorboard/; "
        "pip install 'lstmkit[track]') or mlflow (MLFLOW_TRACKING_URI; pip install 'lstmkit[mlflow]')",
    )

    def check(self) -> None:
        if not self.monitor.strip():
            raise self.error("monitor", "must name a metric", self.monitor)
