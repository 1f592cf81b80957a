"""What the training loop keeps and hands back: its progress (:class:`LoopState`, all a checkpoint
needs besides tensors), its result (:class:`TrainResult`), and the small plain helpers around them
(moving a batch to a device, the resume identity check, history.csv's text)."""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from lstmkit.errors import LstmkitError


def to_device(batch: Any, device: torch.device | str) -> Any:
    """Move every tensor inside ``batch`` (NamedTuple, dataclass, dict, list, tuple) to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # NamedTuple
        return type(batch)(*(to_device(v, device) for v in batch))
    if dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        init = {f.name: to_device(getattr(batch, f.name), device) for f in dataclasses.fields(batch) if f.init}
        return type(batch)(**init)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def same_identity(old: Mapping[str, Any], now: Mapping[str, Any]) -> None:
    """Refuse a resume whose task, settings or data sizes differ from the checkpoint's (one line)."""
    for key in sorted(set(old) | set(now)):
        if old.get(key) != now.get(key):
            detail = _first_difference(old.get(key), now.get(key), key)
            raise LstmkitError(f"--resume: {detail}; use the same settings and data, or another --out")


def _first_difference(old: Any, now: Any, where: str) -> str:
    if isinstance(old, Mapping) and isinstance(now, Mapping):
        for k in sorted(set(old) | set(now), key=str):
            if old.get(k) != now.get(k):
                return _first_difference(old.get(k), now.get(k), f"{where}.{k}")
    return f"{where} is {now!r} but the checkpoint was made with {old!r}"


def history_csv(history: Sequence[dict[str, float]]) -> str:
    """history.csv's text: one row per epoch, the union of all rows' columns in first-seen order."""
    columns: list[str] = []
    for row in history:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    return buf.getvalue()


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` returns.

    ``best_metrics``: the history row of the best epoch (``epoch``, ``train_loss``, ``valid_loss``,
    task metrics, ``lr``); ``history``: one such row per completed epoch; ``stopped``:
    ``"completed"``, ``"early_stopping"``, ``"max_time"``, ``"interrupted"`` (by ``signal``) or
    ``"callback"``.
    """

    best_metrics: dict[str, float]
    history: list[dict[str, float]]
    best_epoch: int
    stopped: str
    epochs_run: int
    signal: int | None = None


@dataclass
class LoopState:
    """Everything about the loop's progress that a checkpoint must carry (plain values only)."""

    epoch: int = 1  # the epoch being run, 1-based
    step: int = 0  # batches of `epoch` already done
    loss_sum: float = 0.0  # this rank's sum of (batch mean loss * examples) in `epoch`
    loss_n: int = 0  # this rank's examples in `epoch`
    best_value: float | None = None
    best_epoch: int = 0
    bad_epochs: int = 0
    finished: bool = False
    stopped: str = "completed"
    history: list = field(default_factory=list)
