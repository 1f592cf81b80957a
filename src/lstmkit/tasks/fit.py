"""One ``fit`` for every task: settings -> prepare -> build -> the trainer -> a model folder.

``lstmkit.train(task, ...)`` and ``lstmkit <task> train`` both end here::

    cfg = resolve_config("tag", config=None, hidden_size=256)    # defaults <- config <- keywords
    result = fit("tag", cfg, data="train.txt", valid="valid.txt", out="runs/ner")
    result.predictor.predict("EU rejects German call")          # ready to use, also saved in out/

``metrics.json`` holds ``training`` (the best epoch's row of the history, which epoch, why it
stopped), the task's report (``valid``: a full evaluation of the validation data) and ``test`` when
test data was given.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lstmkit import tasks
from lstmkit.config import ConfigError, Settings, read_toml
from lstmkit.errors import LstmkitError
from lstmkit.tasks.base import Callback, Predictor, Prepared, Task, build_network
from lstmkit.tasks.outdir import CHECKPOINT, check_out, prepare_stage

if TYPE_CHECKING:
    from lstmkit.trainer import Trainer, TrainResult


@dataclass
class FitResult:
    """What :func:`fit` returns: the ready predictor and what was measured."""

    predictor: Predictor[Any]
    metrics: dict[str, Any]
    history: list[dict[str, float]]
    best_epoch: int
    stopped: str
    out: Path | None
    signal: int | None = None  # the signal that interrupted training (stopped == "interrupted")


def default_config(task: str) -> Settings:
    """The task's settings with every default (the same object the command line starts from)."""
    return tasks.get_spec(task).config()


def resolve_config(
    task: str, config: Settings | Mapping[str, Any] | str | os.PathLike[str] | None = None, **settings: Any
) -> Settings:
    """The task's settings: its defaults, then ``config`` (a Settings, a nested dict as in
    config.json, or a TOML file), then the flat keyword ``settings`` (``hidden_size=256``)."""
    cls = tasks.get_spec(task).config
    if config is None:
        base = cls()
    elif isinstance(config, Settings):
        if not isinstance(config, cls):
            raise ConfigError(f"config: a {type(config).__name__}, not the {task} task's {cls.__name__}")
        base = config
    elif isinstance(config, Mapping):
        base = cls.from_dict(config, source="config")
    else:
        base = cls().build(read_toml(config, cls), source=str(config))
    return base.build(settings) if settings else base


@dataclass
class Budget:
    """The whole command's time budget (``--max-time``), counted from ``started`` (a
    ``time.monotonic()`` reading), without the seconds spent compiling lstmkit's kernel."""

    max_time: float | None
    started: float

    def remaining(self) -> float | None:
        if self.max_time is None:
            return None
        compiled = sys.modules.get("lstmkit.nn.compiled")
        building = float(getattr(compiled, "build_seconds", lambda: 0.0)()) if compiled else 0.0
        return self.started + self.max_time + building - time.monotonic()


SAVE_SECONDS = 2.0  # what writing the model folder and its plots is given at the end of a budget


def fit(
    task: str,
    config: Settings,
    data: Any,
    valid: Any = None,
    out: str | os.PathLike[str] | None = None,
    *,
    test: Any = None,
    resume: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
    callbacks: Sequence[Callback] = (),
    started: float | None = None,
) -> FitResult:
    """Train ``task`` with ``config`` on ``data`` (validated on ``valid``, else a held-out part of
    ``data``); write the model folder ``out`` whole when given. Returns the predictor and metrics.

    ``config.train.max_time`` bounds everything from ``started`` (default: now) to the folder on
    disk: training stops early enough for the final evaluation, which is skipped (and said so) when
    the time left would not cover it. SIGINT / SIGTERM stop training after the current step; the
    folder and a checkpoint are written and ``stopped`` is ``"interrupted"``.
    """
    from lstmkit.io import commit_folder
    from lstmkit.trainer.distributed import is_main_process
    from lstmkit.trainer.tracking import require

    budget = Budget(config.train.max_time, time.monotonic() if started is None else started)  # type: ignore[attr-defined]
    config.validate()
    require(config.train.log_to)  # type: ignore[attr-defined]  # a missing --log-to package: said before any work
    check_out(out, task, resume=resume, overwrite=overwrite)
    run = tasks.task_class(task)(config)
    if test is not None:
        run.check(test)  # a bad --test is found now, not after the training
    prep = run.prepare(data, valid)  # may resolve automatic settings in run.config
    stage, resume_from = prepare_stage(out, resume, is_main_process()) if out is not None else (None, None)
    try:  # a network that cannot be built (too big for memory) leaves no staging folder either
        trainer = _trainer(
            run,
            prep,
            stage,
            budget,
            test is not None,
            resume=resume_from is not None,
            quiet=quiet,
            resume_from=resume_from,
        )
        for event, fn in [*run.callbacks(), *callbacks]:
            trainer.add_callback(event, fn)
        result = trainer.fit()
    except BaseException:
        if stage is not None and not (stage / CHECKPOINT).is_file():  # nothing to resume from: leave no trace
            shutil.rmtree(stage, ignore_errors=True)
        raise
    predictor = type(run).Predictor(run.config, trainer.model, prep.dims, prep.transforms)
    best = {"best_epoch": result.best_epoch, "epochs_run": result.epochs_run, "stopped": result.stopped}
    metrics: dict[str, Any] = {"training": {**result.best_metrics, **best}}
    failure = None
    if result.stopped != "interrupted":
        try:
            metrics.update(_report(run, predictor, prep, result, budget, trainer.valid_seconds, test))
        except LstmkitError as e:  # the trained model is kept; the error is raised once it is saved
            failure = e
            metrics["final_evaluation"] = f"failed: {str(e).splitlines()[0]}"
    if stage is not None and out is not None:
        predictor.save(stage, metrics)
        if is_main_process():
            commit_folder(stage, out)
    if failure is not None:
        raise failure
    path = Path(out) if out is not None else None
    return FitResult(predictor, metrics, result.history, result.best_epoch, result.stopped, path, result.signal)


def _report(
    run: Task[Any],
    predictor: Predictor[Any],
    prep: Prepared,
    result: TrainResult,
    budget: Budget,
    valid_seconds: float,
    test: Any,
) -> dict[str, Any]:
    """The task's final evaluation (and ``test``'s), unless the budget has no time left for it."""
    need = run.report_cost * valid_seconds * (2 if test is not None else 1)
    left = budget.remaining()
    if left is not None and left < need:
        note = f"skipped: --max-time left {max(0.0, left):.0f}s, the final evaluation needs about {need:.0f}s"
        print(f"note: final evaluation {note[9:]}; metrics.json has the best epoch's validation", file=sys.stderr)
        return {"final_evaluation": note}
    metrics = run.report(predictor, prep, result)
    if test is not None:
        metrics["test"] = predictor.evaluate(test)
    return metrics


def _trainer(
    run: Task[Any],
    prep: Prepared,
    out: Path | None,
    budget: Budget,
    has_test: bool,
    *,
    resume: bool,
    quiet: bool,
    resume_from: Path | None,
) -> Trainer:
    """The trainer for a prepared run, with a freshly seeded network; its time is what the budget
    leaves after the final evaluation (measured by the validation passes) and the save."""
    import torch

    from lstmkit.trainer import Trainer

    tcfg = run.config.train
    if prep.valid is None and tcfg.monitor not in ("valid_loss", "train_loss"):
        print(f"note: no validation data: --monitor {tcfg.monitor} becomes train_loss", file=sys.stderr)
        tcfg = tcfg.build(monitor="train_loss", monitor_mode="min")
    torch.manual_seed(tcfg.seed)
    model = build_network(run, prep.dims)
    run.init(model, prep)
    holder: list[Trainer] = []

    def time_left() -> float:
        valid = holder[0].estimated_valid_seconds()
        reserve = SAVE_SECONDS + valid * (1 + run.report_cost * (2 if has_test else 1))
        return (budget.remaining() or 0.0) - reserve

    trainer = Trainer(
        model,
        tcfg,
        prep.train,
        prep.collate,
        run.loss,
        valid_set=prep.valid,
        evaluate=run.metrics if prep.valid is not None else None,
        batch_sampler=prep.batch_sampler,
        out_dir=out,
        resume=resume,
        quiet=quiet,
        resume_from=resume_from,
        time_left=time_left if budget.max_time is not None else None,
        identity=run.identity(prep),
        extra_state=run,
    )
    holder.append(trainer)
    return trainer


def set_threads(n: int | None) -> None:
    """Use ``n`` CPU threads in torch and lstmkit's kernels (they share torch's OpenMP pool). None
    keeps torch's own choice: every physical core, or ``OMP_NUM_THREADS`` when set. Without torch (an
    export folder on the runtime), nothing to do here: ONNX Runtime's sessions take ``--threads`` themselves."""
    if n is None:
        return
    if n < 1:
        raise LstmkitError(f"--threads must be >= 1, got {n}")
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(n)
