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
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lstmkit import tasks
from lstmkit.config import ConfigError, Settings, read_toml
from lstmkit.errors import LstmkitError
from lstmkit.tasks.base import Callback, Predictor, Prepared, Task

if TYPE_CHECKING:
    from lstmkit.trainer import Trainer


@dataclass
class FitResult:
    """What :func:`fit` returns: the ready predictor and what was measured."""

    predictor: Predictor[Any]
    metrics: dict[str, Any]
    history: list[dict[str, float]]
    best_epoch: int
    stopped: str
    out: Path | None


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
        base = cls().build(read_toml(config), source=str(config))
    return base.build(settings) if settings else base


def check_out(out: str | os.PathLike[str] | None, task: str, *, resume: bool = False, overwrite: bool = False) -> None:
    """Refuse an output folder before any work: a file in the way, a folder that cannot be
    written, or a model already there (unless ``resume`` or ``overwrite``)."""
    if out is None:
        return
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise LstmkitError(f"--out {path}: exists and is not a folder")
    if (path / "config.json").is_file() and not (resume or overwrite):
        raise LstmkitError(
            f"--out {path}: holds a trained model; pass --overwrite to replace it or --resume to continue"
        )
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not os.access(probe, os.W_OK | os.X_OK):
        raise LstmkitError(f"--out {path}: {probe} is not writable")
    if overwrite and (path / "config.json").is_file():
        from lstmkit.io import read_config

        try:
            old = read_config(path)["task"]
        except LstmkitError:
            old = "unreadable"
        if old != task:
            print(f"note: --overwrite replaces a {old!r} model in {path} with a {task!r} model", file=sys.stderr)


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
) -> FitResult:
    """Train ``task`` with ``config`` on ``data`` (validated on ``valid``, else a held-out part of
    ``data``); write the model folder ``out`` when given. Returns the predictor and the metrics."""
    config.validate()
    check_out(out, task, resume=resume, overwrite=overwrite)
    run = tasks.task_class(task)(config)
    prep = run.prepare(data, valid)  # may resolve automatic settings in run.config
    trainer = _trainer(run, prep, out, resume=resume, quiet=quiet)
    for event, fn in [*run.callbacks(), *callbacks]:
        trainer.add_callback(event, fn)
    result = trainer.fit()
    predictor = type(run).Predictor(run.config, trainer.model, prep.dims, prep.transforms)
    best = {"best_epoch": result.best_epoch, "epochs_run": result.epochs_run, "stopped": result.stopped}
    metrics: dict[str, Any] = {"training": {**result.best_metrics, **best}}
    metrics.update(run.report(predictor, prep, result))
    if test is not None:
        metrics["test"] = predictor.evaluate(test)
    if out is not None:
        predictor.save(out, metrics)
    path = Path(out) if out is not None else None
    return FitResult(predictor, metrics, result.history, result.best_epoch, result.stopped, path)


def _trainer(
    run: Task[Any], prep: Prepared, out: str | os.PathLike[str] | None, *, resume: bool, quiet: bool
) -> Trainer:
    """The trainer for a prepared run, with a freshly seeded network."""
    import torch

    from lstmkit.trainer import Trainer

    tcfg = run.config.train
    if prep.valid is None and tcfg.monitor not in ("valid_loss", "train_loss"):
        print(f"note: no validation data: --monitor {tcfg.monitor} becomes train_loss", file=sys.stderr)
        tcfg = tcfg.build(monitor="train_loss", monitor_mode="min")
    torch.manual_seed(tcfg.seed)
    model = run.build(prep.dims)
    run.init(model, prep)
    return Trainer(
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
    )


def set_threads(n: int | None) -> None:
    """Use ``n`` CPU threads in torch and lstmkit's kernels (they share torch's OpenMP pool). None
    keeps torch's own choice: every physical core, or ``OMP_NUM_THREADS`` when set."""
    import torch

    if n is None:
        return
    if n < 1:
        raise LstmkitError(f"--threads must be >= 1, got {n}")
    torch.set_num_threads(n)
