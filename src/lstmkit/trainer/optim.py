"""The optimiser and learning-rate schedule that :class:`~lstmkit.trainer.Trainer` builds from its
:class:`~lstmkit.trainer.TrainConfig` (``--optimizer``, ``--lr``, ``--momentum``, ``--weight-decay``,
``--schedule``)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lstmkit.trainer.config import TrainConfig


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW (decoupled weight decay) or SGD (L2 weight decay, momentum) over the trainable parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig) -> Any:
    """cosine: anneal per epoch to 0 at ``epochs``; plateau: halve the rate after ``max(1, patience // 2)``
    epochs without a better ``monitor``; none: ``None``."""
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
    if cfg.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode=cfg.monitor_mode, factor=0.5, patience=max(1, cfg.patience // 2)
        )
    return None


def rescale_schedule(scheduler: Any, cfg: TrainConfig) -> None:
    """After a resume with a new ``epochs`` / ``patience``: the restored schedule follows them (a
    restored cosine would otherwise keep the old length and climb back up)."""
    if isinstance(scheduler, torch.optim.lr_scheduler.CosineAnnealingLR):
        scheduler.T_max = cfg.epochs
    elif isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.patience = max(1, cfg.patience // 2)
