"""The generic training loop: one small :class:`Trainer` with named hooks, used by every task.

The trainer knows nothing of any task. A task hands it a model, a training set (any sequence of
examples), a ``collate`` function (examples -> batch), a ``loss_fn(model, batch) -> mean loss``
and optionally a validation set and an ``evaluate(model, batches) -> metrics`` function.

Per epoch: batches of indices from ``batch_sampler(epoch, generator, n)`` with a generator seeded
by ``(seed, epoch)``; per batch: collate this rank's share, forward under bf16 autocast on CUDA,
loss (+ L1 penalty), backward, clip, step (and with ``ema`` the weights' moving average:
:mod:`lstmkit.trainer.ema`); at the end of the epoch: validation (of that average, if any),
history, early-stopping bookkeeping, LR schedule, callbacks, then an atomic checkpoint (exact
resume). The optimiser and schedule: :mod:`lstmkit.trainer.optim`; the loop's state and result:
:mod:`lstmkit.trainer.state`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lstmkit.data.batching import BatchSampler, shuffled_batches
from lstmkit.errors import LstmkitError
from lstmkit.io import atomic_write_text
from lstmkit.trainer import checkpoint as ckpt_io
from lstmkit.trainer import distributed, tracking
from lstmkit.trainer.config import TrainConfig
from lstmkit.trainer.ema import WeightAverage
from lstmkit.trainer.optim import make_optimizer, make_scheduler, rescale_schedule
from lstmkit.trainer.progress import Progress
from lstmkit.trainer.state import LoopState, TrainResult, history_csv, same_identity, to_device
from lstmkit.trainer.stops import SIGNAL_NAMES, Stops

EVENTS = ("on_epoch_start", "on_batch_end", "on_epoch_end", "on_train_end")
# Fields that may change between a run and its --resume (the others must match the checkpoint).
RESUMABLE_CHANGES = {"epochs", "max_time", "device", "patience", "log_to"}


class Trainer:
    """Train ``model`` on ``train_set``; see the module docstring and docs/architecture.md.

    ``out_dir`` receives the checkpoint, history.csv and loss.png (and ``cfg.log_to``'s tracker
    the same: :mod:`lstmkit.trainer.tracking`); ``resume`` continues from the
    checkpoint in ``resume_from`` (default ``out_dir``); ``time_left()`` overrides the budget of
    ``cfg.max_time`` (see :class:`~lstmkit.trainer.stops.Stops`). ``identity`` (plain values:
    the task, its settings, the data's sizes) is saved in the checkpoint and must be the same on
    resume; ``extra_state`` (an object with ``state_dict()`` / ``load_state_dict(d)``, e.g. a
    language model's carried hidden state) is saved and restored with the loop.

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
        time_left: Callable[[], float] | None = None,
        resume_from: str | os.PathLike[str] | None = None,
        identity: Mapping[str, Any] | None = None,
        extra_state: Any = None,
    ):
        if len(train_set) == 0:
            raise LstmkitError("training set is empty")
        self.model, self.cfg = model, cfg
        self.train_set, self.valid_set = train_set, valid_set
        self.collate, self.loss_fn, self.evaluate = collate, loss_fn, evaluate
        self.batch_sampler = batch_sampler or shuffled_batches(cfg.batch_size)
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.resume, self.quiet = resume, quiet
        self.resume_from = Path(resume_from) if resume_from is not None else self.out_dir  # where checkpoint/ is read
        self.stops = Stops(cfg.max_time, time_left)  # replaced in fit(): the budget starts there
        self._time_left = time_left
        self.valid_seconds = 0.0  # the last validation pass: what a final evaluation will cost
        self.partial_rows: list[dict[str, float]] = []  # validation of an epoch cut short (not resumed)
        self.identity = dict(identity or {})
        self.extra_state = extra_state
        self._train_seconds, self._examples_seen = 0.0, 0  # for a first guess of a validation's cost
        self.callbacks: dict[str, list[Callable[[Trainer], None]]] = {e: [] for e in EVENTS}
        self.state = LoopState()
        self.should_stop = False
        self.last_loss = math.nan
        self.last_metrics: dict[str, float] = {}
        self.best_weights: dict[str, torch.Tensor] | None = None
        self.ema: WeightAverage | None = None  # --ema: the averaged weights, made by fit()
        self.ctx = distributed.DistContext()
        self.train_model: nn.Module = model  # DDP-wrapped under torchrun
        self._optimizer: torch.optim.Optimizer | None = None
        self.scheduler: Any = None
        self.valid_batches: list = []
        self.progress = Progress(quiet=True)  # replaced in fit()
        self.tracker = tracking.Tracker()  # replaced in fit(): the one --log-to names

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
        """Run the loop; the best weights are restored into ``model`` before returning. SIGINT and
        SIGTERM end it like the time budget does: after the current step, with a checkpoint."""
        self.stops = Stops(self.cfg.max_time, self._time_left)
        with self.stops:
            self._setup()
            self.tracker = tracking.attach(self)
            try:
                self._epochs()
                return self._finish()
            finally:
                self.tracker.close("FAILED")  # nothing to do once the run ended in on_train_end

    def _epochs(self) -> None:
        st = self.state
        while not st.finished and st.epoch <= self.cfg.epochs:
            reason = self._run_epoch()
            if reason is not None:  # cut short inside the epoch
                st.stopped = reason
                self._save_checkpoint()
                self._partial_row()
                break
            self._end_epoch()
            reason = self._stop_reason()
            if not st.finished and reason is not None:
                st.stopped = reason
                break

    def _setup(self) -> None:
        cfg = self.cfg
        self.ctx = distributed.setup(cfg.device)
        self.progress = Progress(self.quiet, enabled=self.ctx.is_main)
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed % 2**32)
        random.seed(cfg.seed)
        self.model.to(self.device)
        self.ema = WeightAverage(self.model, cfg.ema) if cfg.ema > 0 else None
        self._optimizer = make_optimizer(self.model, cfg)
        self.scheduler = make_scheduler(self._optimizer, cfg)
        if self.resume:
            if self.resume_from is None:
                raise LstmkitError("--resume needs an output folder (--out)")
            saved = ckpt_io.load_checkpoint(self.resume_from, self.device)
            if saved is not None:
                self._restore(saved)
                self.progress.log(
                    f"resuming from {ckpt_io.checkpoint_path(self.resume_from)} "
                    f"(epoch {self.state.epoch}, batch {self.state.step})"
                )
        self.train_model = distributed.wrap(self.model, self.ctx)
        self.valid_batches = self._collate_valid()

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

    def _stop_reason(self) -> str | None:
        """A signal or the spent budget (see :class:`Stops`); under torchrun every rank takes rank 0's
        answer, since ranks must stop at the same batch or the next all-reduce hangs."""
        reason = self.stops.reason()
        if self.ctx.distributed:
            reason = distributed.broadcast_object(reason, self.ctx)
        return reason

    # ------------------------------------------------------------------ one epoch
    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        g = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + epoch)
        batches = [list(b) for b in self.batch_sampler(epoch, g, len(self.train_set))]
        return [b for b in batches if b]

    def _run_epoch(self) -> str | None:
        """Train the rest of the current epoch; the reason when it was cut short (else None)."""
        st = self.state
        batches = self._epoch_batches(st.epoch)
        if st.step == 0:
            self._fire("on_epoch_start")
        self._epoch_t0 = time.monotonic()
        self.model.train()
        self.progress.start_epoch(st.epoch, self.cfg.epochs, len(batches), done=st.step)
        try:
            for i in range(st.step, len(batches)):
                t_step = time.monotonic()
                self.last_loss = self._train_step(batches[i])
                self._train_seconds += time.monotonic() - t_step
                self._examples_seen += len(batches[i])
                st.step = i + 1
                self._fire("on_batch_end")
                self.progress.update(self.last_loss)
                if st.step < len(batches):
                    reason = self._stop_reason()
                    if reason is not None:
                        return reason
                    if self.stops.checkpoint_due():  # a long epoch: a kill -9 loses at most this much
                        self._save_checkpoint()
        finally:
            self.progress.end_epoch()
        return None

    def estimated_valid_seconds(self) -> float:
        """What a validation pass costs: the last one measured, or before the first one a guess
        from the training steps so far (a forward pass is about a third of a training step)."""
        if self.valid_seconds > 0 or not self.valid_set or self._examples_seen == 0:
            return self.valid_seconds
        return 0.5 * self._train_seconds / self._examples_seen * len(self.valid_set)

    def _partial_row(self) -> None:
        """Validate an epoch cut short, for history.csv and loss.png (not for the best epoch, and
        not carried by the checkpoint, so a resumed run's history equals an uninterrupted one's)."""
        st = self.state
        if st.step == 0:
            return
        done = st.step / max(1, len(self._epoch_batches(st.epoch)))
        row = {"epoch": st.epoch - 1 + done, "train_loss": self._global_train_loss(), **self._validate()}
        self.partial_rows.append({**row, "lr": float(self.optimizer.param_groups[0]["lr"]), "partial": 1.0})

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
        if self.ema is not None:
            self.ema.update()
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

    def _averaged(self) -> contextlib.AbstractContextManager:
        """The weights that validation judges and the best epoch keeps: --ema's average, else the raw ones."""
        return self.ema.applied() if self.ema is not None else contextlib.nullcontext()

    @torch.no_grad()
    def _validate(self) -> dict[str, float]:
        """valid_loss (example-weighted mean of loss_fn) and evaluate()'s metrics, on every rank
        (with --ema: of the averaged weights)."""
        if not self.valid_batches:
            return {}
        with self._averaged():
            return self._validate_now()

    def _validate_now(self) -> dict[str, float]:
        t0 = time.monotonic()
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
        self.valid_seconds = time.monotonic() - t0
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
            with self._averaged():
                self.best_weights = ckpt_io.cpu_state_dict(self.model)
        else:
            st.bad_epochs += 1

    # ------------------------------------------------------------------ files
    def _save_checkpoint(self) -> None:
        self.stops.checkpointed()
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
                "identity": self.identity,
                "extra": self.extra_state.state_dict() if self.extra_state is not None else {},
                "ema": self.ema.state_dict() if self.ema is not None else {},
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
        same_identity(saved.get("identity", {}), self.identity)
        try:
            self.model.load_state_dict(saved["model"])
            self.optimizer.load_state_dict(saved["optimizer"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise LstmkitError(
                f"--resume: the checkpoint does not fit this model ({str(e).splitlines()[0][:160]}); "
                "use the settings it was made with or another --out"
            ) from None
        if self.scheduler is not None and saved["scheduler"]:
            self.scheduler.load_state_dict(saved["scheduler"])
            rescale_schedule(self.scheduler, self.cfg)
        if self.extra_state is not None and saved.get("extra"):
            self.extra_state.load_state_dict(saved["extra"])
        if self.ema is not None and saved.get("ema"):
            self.ema.load_state_dict(saved["ema"])
        self.best_weights = saved["best"]
        self.state = LoopState(**saved["loop"])
        if self.state.epoch <= self.cfg.epochs and self.state.stopped != "early_stopping":
            self.state.finished, self.state.stopped = False, "completed"  # more epochs asked for
        ckpt_io.set_rng_state(saved["rng"])

    def _write_history(self) -> None:
        rows = self.state.history + self.partial_rows
        if self.out_dir is None or not self.ctx.is_main or not rows:
            return
        atomic_write_text(self.out_dir / "history.csv", history_csv(rows))

    def _finish(self) -> TrainResult:
        st = self.state
        if self.best_weights is None and self.ema is not None:
            self.ema.copy_to()  # no best epoch: the average reached so far, as validated
        if self.best_weights is not None:
            self.model.load_state_dict(self.best_weights)
            best = next(r for r in st.history if r["epoch"] == st.best_epoch)
        elif self.partial_rows:  # cut short inside the first epoch: the weights reached so far
            best = {k: v for k, v in self.partial_rows[-1].items() if k != "partial"}
        else:
            best = {"epoch": 0, "train_loss": self._global_train_loss(), **self._validate()}
        rows = st.history + self.partial_rows
        if self.out_dir is not None and self.ctx.is_main and rows:  # before on_train_end: a tracker logs the plot
            from lstmkit.plots import plot_loss

            self._write_history()
            plot_loss(rows, self.out_dir / "loss.png", monitor=self.monitor, best_epoch=st.best_epoch or None)
        self._fire("on_train_end")
        if st.stopped in ("max_time", "interrupted"):
            note = f"best epoch {st.best_epoch}" if st.best_epoch else "no epoch completed yet"
            why = (
                f"time budget of {self.cfg.max_time:g}s reached"
                if st.stopped == "max_time" and self.cfg.max_time
                else "time budget reached"
                if st.stopped == "max_time"
                else f"interrupted by {SIGNAL_NAMES.get(self.stops.signal or 0, 'a signal')}"
            )
            self.progress.log(
                f"{why}: stopped at epoch {st.epoch}, batch {st.step} ({note}; checkpoint written, --resume continues)",
                force=st.stopped == "interrupted",
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
            signal=self.stops.signal,
        )
