"""The generic training loop: one small :class:`Trainer` with named hooks, used by every task.

The trainer knows nothing of any task. A task hands it a model, a training set (any sequence of
examples), a ``collate`` function (examples -> batch), a ``loss_fn(model, batch) -> mean loss``
and optionally a validation set and an ``evaluate(model, batches) -> metrics`` function.

Per epoch: batches of indices from ``batch_sampler(epoch, generator, n)`` with a generator seeded
by ``(seed, epoch)``; per batch: collate this rank's share, forward under bf16 autocast on CUDA,
loss (+ L1 penalty), backward, clip, step; at the end of the epoch: validation, history,
early-stopping bookkeeping, LR schedule, callbacks, then an atomic checkpoint (exact resume).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lstmkit.data.batching import BatchSampler, shuffled_batches
from lstmkit.errors import LstmkitError
from lstmkit.io import atomic_write_text
from lstmkit.trainer import checkpoint as ckpt_io
from lstmkit.trainer import distributed
from lstmkit.trainer.config import TrainConfig
from lstmkit.trainer.progress import Progress

EVENTS = ("on_epoch_start", "on_batch_end", "on_epoch_end", "on_train_end")
# Fields that may change between a run and its --resume (the others must match the checkpoint).
RESUMABLE_CHANGES = {"epochs", "max_time", "device", "patience"}


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
    task metrics, ``lr``); ``history``: one such row per epoch; ``stopped``: ``"completed"``,
    ``"early_stopping"``, ``"max_time"`` or ``"callback"``.
    """

    best_metrics: dict[str, float]
    history: list[dict[str, float]]
    best_epoch: int
    stopped: str
    epochs_run: int


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


class Trainer:
    """Train ``model`` on ``train_set``; see the module docstring and docs/contracts.md.

    Callbacks (``add_callback(event, fn)``, ``fn(trainer)``) may read ``trainer.model``,
    ``trainer.state`` (epoch, step, history, ...), ``trainer.last_loss`` and
    ``trainer.last_metrics``, and set ``trainer.should_stop = True``.
    """

    def __init__(
        self,
        model: nn.Module,
        cfg: TrainConfig,
        train_set: Sequence,
        collate: Callable[[list], Any],
        loss_fn: Callable[[nn.Module, Any], torch.Tensor],
        valid_set: Sequence | None = None,
        evaluate: Callable[[nn.Module, list], dict[str, float]] | None = None,
        batch_sampler: BatchSampler | None = None,
        out_dir: str | os.PathLike[str] | None = None,
        *,
        resume: bool = False,
        quiet: bool = False,
    ):
        if len(train_set) == 0:
            raise LstmkitError("training set is empty")
        self.model, self.cfg = model, cfg
        self.train_set, self.valid_set = train_set, valid_set
        self.collate, self.loss_fn, self.evaluate = collate, loss_fn, evaluate
        self.batch_sampler = batch_sampler or shuffled_batches(cfg.batch_size)
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.resume, self.quiet = resume, quiet
        self.callbacks: dict[str, list[Callable[[Trainer], None]]] = {e: [] for e in EVENTS}
        self.state = LoopState()
        self.should_stop = False
        self.last_loss = math.nan
        self.last_metrics: dict[str, float] = {}
        self.best_weights: dict[str, torch.Tensor] | None = None
        self.ctx = distributed.DistContext()
        self.train_model: nn.Module = model  # DDP-wrapped under torchrun
        self._optimizer: torch.optim.Optimizer | None = None
        self.scheduler: Any = None
        self.valid_batches: list = []
        self.progress = Progress(quiet=True)  # replaced in fit()

    # ------------------------------------------------------------------ hooks
    def add_callback(self, event: str, fn: Callable[[Trainer], None]) -> None:
        """Call ``fn(trainer)`` at ``event`` (one of :data:`EVENTS`)."""
        if event not in self.callbacks:
            raise ValueError(f"unknown event {event!r}; events: {', '.join(EVENTS)}")
        self.callbacks[event].append(fn)

    def _fire(self, event: str) -> None:
        for fn in self.callbacks[event]:
            fn(self)

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        """The optimizer (made by :meth:`fit`)."""
        if self._optimizer is None:
            raise RuntimeError("the optimizer exists once fit() has started")
        return self._optimizer

    @property
    def device(self) -> torch.device:
        return self.ctx.device

    @property
    def monitor(self) -> str:
        """The watched metric (``train_loss`` when there is no validation set and none was chosen)."""
        if self.valid_set is None and self.cfg.monitor == "valid_loss":
            return "train_loss"
        return self.cfg.monitor

    # ------------------------------------------------------------------ fit
    def fit(self) -> TrainResult:
        """Run the loop; the best weights are restored into ``model`` before returning."""
        self._setup()
        t0 = time.monotonic()
        st = self.state
        while not st.finished and st.epoch <= self.cfg.epochs:
            if not self._run_epoch(t0):
                st.stopped = "max_time"
                self._save_checkpoint()
                break
            self._end_epoch()
            if not st.finished and self._over_budget(t0):
                st.stopped = "max_time"
                break
        return self._finish()

    def _setup(self) -> None:
        cfg = self.cfg
        self.ctx = distributed.setup(cfg.device)
        self.progress = Progress(self.quiet, enabled=self.ctx.is_main)
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed % 2**32)
        random.seed(cfg.seed)
        self.model.to(self.device)
        self._optimizer = self._make_optimizer()
        self.scheduler = self._make_scheduler()
        if self.resume:
            if self.out_dir is None:
                raise LstmkitError("--resume needs an output folder (--out)")
            saved = ckpt_io.load_checkpoint(self.out_dir, self.device)
            if saved is not None:
                self._restore(saved)
                self.progress.log(
                    f"resuming from {ckpt_io.checkpoint_path(self.out_dir)} "
                    f"(epoch {self.state.epoch}, batch {self.state.step})"
                )
        self.train_model = distributed.wrap(self.model, self.ctx)
        self.valid_batches = self._collate_valid()

    def _make_optimizer(self) -> torch.optim.Optimizer:
        cfg = self.cfg
        params = [p for p in self.model.parameters() if p.requires_grad]
        if cfg.optimizer == "sgd":
            return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)

    def _make_scheduler(self) -> Any:
        cfg = self.cfg
        if cfg.schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=cfg.epochs)
        if cfg.schedule == "plateau":
            return torch.optim.lr_scheduler.ReduceLROnPlateau(
                self.optimizer, mode=cfg.monitor_mode, factor=0.5, patience=max(1, cfg.patience // 2)
            )
        return None

    def _collate_valid(self) -> list:
        if self.valid_set is None:
            return []
        if len(self.valid_set) == 0:
            raise LstmkitError("validation set is empty")
        bs, n = self.cfg.batch_size, len(self.valid_set)
        return [
            to_device(self.collate([self.valid_set[i] for i in range(s, min(s + bs, n))]), self.device)
            for s in range(0, n, bs)
        ]

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _over_budget(self, t0: float) -> bool:
        """Whether the time budget is spent; under torchrun every rank takes rank 0's answer."""
        if self.cfg.max_time is None:
            return False
        over = time.monotonic() - t0 >= self.cfg.max_time
        if self.ctx.distributed:  # ranks must stop at the same batch, or the next all-reduce hangs
            over = bool(distributed.broadcast_object(over, self.ctx))
        return over

    # ------------------------------------------------------------------ one epoch
    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        g = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + epoch)
        batches = [list(b) for b in self.batch_sampler(epoch, g, len(self.train_set))]
        return [b for b in batches if b]

    def _run_epoch(self, t0: float) -> bool:
        """Train the rest of the current epoch; False when the time budget stopped it midway."""
        st = self.state
        batches = self._epoch_batches(st.epoch)
        if st.step == 0:
            self._fire("on_epoch_start")
        self._epoch_t0 = time.monotonic()
        self.model.train()
        self.progress.start_epoch(st.epoch, self.cfg.epochs, len(batches), done=st.step)
        try:
            for i in range(st.step, len(batches)):
                self.last_loss = self._train_step(batches[i])
                st.step = i + 1
                self._fire("on_batch_end")
                self.progress.update(self.last_loss)
                if st.step < len(batches) and self._over_budget(t0):
                    return False
        finally:
            self.progress.end_epoch()
        return True

    def _train_step(self, indices: list[int]) -> float:
        """One optimisation step on a global batch; returns this rank's mean loss."""
        cfg, ctx = self.cfg, self.ctx
        local = distributed.shard(indices, ctx)
        n_local = len(local)
        # DDP averages gradients over ranks; weighting each rank's mean by its share makes that
        # average the gradient of the global-batch mean (an empty shard runs one example at weight 0).
        weight = n_local * ctx.world_size / len(indices)
        batch = to_device(self.collate([self.train_set[i] for i in (local or indices[:1])]), self.device)
        with self._autocast():
            loss = self.loss_fn(self.train_model, batch)
        loss_value = float(loss.detach().float())
        if not math.isfinite(loss_value) and n_local > 0:
            raise LstmkitError(
                f"training diverged: loss is {loss_value} at epoch {self.state.epoch}, "
                f"batch {self.state.step + 1} (try a lower --lr or --clip-grad)"
            )
        total = loss.float() * weight if ctx.distributed else loss.float()
        if cfg.l1 > 0:
            total = total + cfg.l1 * sum(p.abs().sum() for p in self.model.parameters() if p.requires_grad)
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        if cfg.clip_grad:
            nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.grad is not None], cfg.clip_grad)
        self.optimizer.step()
        self.state.loss_sum += loss_value * n_local
        self.state.loss_n += n_local
        return loss_value

    # ------------------------------------------------------------------ end of epoch
    def _end_epoch(self) -> None:
        st, cfg = self.state, self.cfg
        row = {"epoch": st.epoch, "train_loss": self._global_train_loss()}
        row.update(self._validate())
        row["lr"] = float(self.optimizer.param_groups[0]["lr"])
        self.last_metrics = row
        st.history.append(row)
        self._update_best(row)
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(row[self.monitor])
        elif self.scheduler is not None:
            self.scheduler.step()
        if cfg.patience > 0 and st.bad_epochs >= cfg.patience:
            st.finished, st.stopped = True, "early_stopping"
        seconds = time.monotonic() - self._epoch_t0
        epoch = st.epoch
        st.epoch, st.step, st.loss_sum, st.loss_n = st.epoch + 1, 0, 0.0, 0
        if st.epoch > cfg.epochs:
            st.finished = True
        self._fire("on_epoch_end")
        if self.should_stop and not st.finished:
            st.finished, st.stopped = True, "callback"
        self._save_checkpoint()
        self._write_history()
        note = "  *" if st.best_epoch == epoch else ""
        self.progress.epoch_summary(epoch, cfg.epochs, {k: v for k, v in row.items() if k != "epoch"}, seconds, note)

    def _global_train_loss(self) -> float:
        sums = torch.tensor(
            [self.state.loss_sum, float(self.state.loss_n)],
            dtype=torch.float64,
            device=self.device if self.device.type == "cuda" else "cpu",
        )
        distributed.all_reduce_sum(sums, self.ctx)
        return float(sums[0] / sums[1]) if sums[1] > 0 else math.nan

    @torch.no_grad()
    def _validate(self) -> dict[str, float]:
        """valid_loss (example-weighted mean of loss_fn) and evaluate()'s metrics, on every rank."""
        if not self.valid_batches:
            return {}
        self.model.eval()
        total, count = 0.0, 0
        bs, n = self.cfg.batch_size, len(self.valid_set or ())
        with self._autocast():
            for b, batch in enumerate(self.valid_batches):
                size = min(bs, n - b * bs)
                total += float(self.loss_fn(self.model, batch).float()) * size
                count += size
            metrics = {"valid_loss": total / count}
            if self.evaluate is not None:
                metrics.update({k: float(v) for k, v in self.evaluate(self.model, self.valid_batches).items()})
        self.model.train()
        return metrics

    def _update_best(self, row: dict[str, float]) -> None:
        st, name = self.state, self.monitor
        if name not in row:
            raise LstmkitError(
                f"--monitor {name}: not a metric of this task (metrics: {', '.join(k for k in row if k != 'epoch')})"
            )
        value = row[name]
        better = math.isfinite(value) and (
            st.best_value is None
            or (value < st.best_value if self.cfg.monitor_mode == "min" else value > st.best_value)
        )
        if better:
            st.best_value, st.best_epoch, st.bad_epochs = value, st.epoch, 0
            self.best_weights = ckpt_io.cpu_state_dict(self.model)
        else:
            st.bad_epochs += 1

    # ------------------------------------------------------------------ files
    def _save_checkpoint(self) -> None:
        if self.out_dir is None or not self.ctx.is_main:
            return
        ckpt_io.save_checkpoint(
            self.out_dir,
            {
                "model": ckpt_io.cpu_state_dict(self.model),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler is not None else {},
                "best": self.best_weights,
                "loop": dataclasses.asdict(self.state),
                "rng": ckpt_io.rng_state(),
                "config": self.cfg.to_dict(),
            },
        )

    def _restore(self, saved: dict[str, Any]) -> None:
        now = self.cfg.to_dict()
        for key, old in saved["config"].items():
            if key not in RESUMABLE_CHANGES and now.get(key) != old:
                raise LstmkitError(
                    f"--resume: {key} is {now.get(key)!r} but the checkpoint was made with "
                    f"{old!r}; use the same setting or another --out"
                )
        self.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        if self.scheduler is not None and saved["scheduler"]:
            self.scheduler.load_state_dict(saved["scheduler"])
        self.best_weights = saved["best"]
        self.state = LoopState(**saved["loop"])
        if self.state.epoch <= self.cfg.epochs and self.state.stopped != "early_stopping":
            self.state.finished, self.state.stopped = False, "completed"  # more epochs asked for
        ckpt_io.set_rng_state(saved["rng"])

    def _write_history(self) -> None:
        if self.out_dir is None or not self.ctx.is_main or not self.state.history:
            return
        atomic_write_text(self.out_dir / "history.csv", history_csv(self.state.history))

    def _finish(self) -> TrainResult:
        st = self.state
        if self.best_weights is not None:
            self.model.load_state_dict(self.best_weights)
            best = next(r for r in st.history if r["epoch"] == st.best_epoch)
        else:  # stopped by the time budget before the end of the first epoch
            best = {"epoch": 0, "train_loss": self._global_train_loss(), **self._validate()}
        self._fire("on_train_end")
        if self.out_dir is not None and self.ctx.is_main and st.history:
            from lstmkit.plots import plot_loss

            self._write_history()
            plot_loss(st.history, self.out_dir / "loss.png")
        if st.stopped == "max_time":
            note = f"best epoch {st.best_epoch}" if st.best_epoch else "no epoch completed yet"
            self.progress.log(
                f"time budget of {self.cfg.max_time:g}s reached: stopped at epoch {st.epoch}, "
                f"batch {st.step} ({note}; --resume continues)"
            )
        elif st.stopped == "early_stopping":
            self.progress.log(
                f"early stopping: no better {self.monitor} for {self.cfg.patience} epochs (best epoch {st.best_epoch})"
            )
        return TrainResult(
            best_metrics=dict(best),
            history=list(st.history),
            best_epoch=st.best_epoch,
            stopped=st.stopped,
            epochs_run=len(st.history),
        )
