"""The trainer's configuration: one typed dataclass, saved in every model folder's config.json."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from lstmkit.errors import LstmkitError

Optimizer = Literal["adamw", "sgd"]
Schedule = Literal["none", "cosine", "plateau"]
Mode = Literal["min", "max"]
Device = Literal["auto", "cpu", "cuda"]


@dataclass
class TrainConfig:
    """Every setting of :class:`lstmkit.train.Trainer`.

    Attributes:
        epochs: maximum number of passes over the training set.
        batch_size: global batch size (split across ranks under torchrun).
        lr: learning rate.
        optimizer: ``"adamw"`` (default) or ``"sgd"``.
        momentum: SGD momentum (ignored by AdamW).
        weight_decay: decoupled weight decay (AdamW) / L2 penalty (SGD).
        l1: coefficient of an L1 penalty ``l1 * sum(|w|)`` added to the loss.
        schedule: learning-rate schedule: ``"none"``, ``"cosine"`` (per epoch, to 0 at ``epochs``)
            or ``"plateau"`` (x0.5 when ``monitor`` stalls for ``max(1, patience // 2)`` epochs).
        clip_grad: max global gradient norm; ``None`` or ``0`` disables clipping.
        patience: early stopping after this many epochs without improvement of ``monitor``
            (``0`` disables early stopping); the best weights are restored at the end.
        monitor: the validation metric watched (``"valid_loss"`` or a key of ``evaluate``'s dict).
        mode: ``"min"`` or ``"max"``: whether smaller or larger ``monitor`` is better.
        max_time: wall-clock budget in seconds; training stops cleanly after the batch that
            crosses it (checkpoint written, best model restored).
        seed: seed of every random generator (same seed -> same metrics on CPU).
        device: ``"auto"`` (CUDA if available), ``"cpu"`` or ``"cuda"``; bf16 autocast on CUDA.
        quiet: no progress output at all.
        resume: continue from ``out_dir/checkpoint/`` if it exists.
    """

    epochs: int = 20
    batch_size: int = 32
    lr: float = 1e-3
    optimizer: Optimizer = "adamw"
    momentum: float = 0.0
    weight_decay: float = 0.0
    l1: float = 0.0
    schedule: Schedule = "none"
    clip_grad: float | None = 1.0
    patience: int = 5
    monitor: str = "valid_loss"
    mode: Mode = "min"
    max_time: float | None = None
    seed: int = 0
    device: Device = "auto"
    quiet: bool = False
    resume: bool = False

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`LstmkitError` naming the first bad field."""
        _check(self.epochs >= 1, "epochs", "must be >= 1", self.epochs)
        _check(self.batch_size >= 1, "batch_size", "must be >= 1", self.batch_size)
        _check(_finite(self.lr) and self.lr > 0, "lr", "must be > 0", self.lr)
        _check(_finite(self.momentum) and self.momentum >= 0, "momentum", "must be >= 0", self.momentum)
        _check(_finite(self.weight_decay) and self.weight_decay >= 0, "weight_decay", "must be >= 0", self.weight_decay)
        _check(_finite(self.l1) and self.l1 >= 0, "l1", "must be >= 0", self.l1)
        _check(
            self.clip_grad is None or (_finite(self.clip_grad) and self.clip_grad >= 0),
            "clip_grad",
            "must be >= 0",
            self.clip_grad,
        )
        _check(self.patience >= 0, "patience", "must be >= 0", self.patience)
        _check(
            self.max_time is None or (_finite(self.max_time) and self.max_time > 0),
            "max_time",
            "must be > 0 seconds",
            self.max_time,
        )
        _check(bool(self.monitor), "monitor", "must be a metric name", self.monitor)
        for name, kind in (("optimizer", Optimizer), ("schedule", Schedule), ("mode", Mode), ("device", Device)):
            allowed = get_args(kind)
            _check(getattr(self, name) in allowed, name, f"must be one of {', '.join(allowed)}", getattr(self, name))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, strict: bool = True) -> TrainConfig:
        """Build from a dict; unknown keys raise (``strict``) or are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if strict and unknown:
            raise LstmkitError(f"train config: unknown key(s) {', '.join(unknown)}")
        return cls(**{k: v for k, v in d.items() if k in names})


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _check(ok: bool, field: str, what: str, value: Any) -> None:
    if not ok:
        raise LstmkitError(f"train config: {field} {what} (got {value!r})")
