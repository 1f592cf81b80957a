"""The trials of ``lstmkit <task> tune``: each a normal training run, pruned and time-bounded.

A trial is a training run (:func:`lstmkit.tasks.fit.fit`) into ``DIR/trials/<number>/``:

* TPE (seeded by ``--seed``) picks its settings; the first trial runs the settings the tune starts
  from, so the tune is measured against them.
* After each epoch the monitored validation metric is reported; a median pruner stops a run that
  is worse than the median of the earlier runs at the same epoch (state PRUNED). A run that
  diverges, or whose settings do not go together, is pruned too; one that fails for its settings
  (a lookback longer than the data, out of memory) is FAIL and the tune goes on.
* Its time budget is the tune's time left divided over the trials still to start (per worker),
  so that the whole command ends within ``--max-time``.

Every process running trials (``--workers``, or another machine on a shared journal) runs
:func:`run_worker` on the same study (:mod:`lstmkit.tune.journal`).
"""

from __future__ import annotations

import math
import os
import socket
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lstmkit.config import ConfigError, Settings
from lstmkit.errors import LstmkitError
from lstmkit.tune.journal import Job, counted, import_optuna, load_study

if TYPE_CHECKING:
    import optuna

MIN_TRIAL_S = 2.0  # no trial is started with less time than this


def run_worker(job: Job, index: int = 0) -> str:
    """Run trials until ``job.trials`` are done or started, or the time is up; returns why it
    stopped: ``done``, ``time`` or ``interrupted``."""
    optuna = import_optuna()
    study = load_study(job.storage)
    n = len(study.trials)
    seed = (job.seed + 7919 * index + 1009 * n) % 2**32  # another stream per worker and per resume
    study.sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(2, min(10, job.trials // 3)))
    study.pruner = optuna.pruners.MedianPruner(n_startup_trials=max(1, min(5, job.trials // 4)))
    while True:
        trials = study.get_trials(deepcopy=False)
        mine = counted(trials)
        waiting = any(t.state.name == "WAITING" for t in mine)
        if len(mine) >= job.trials and not waiting:
            return "done"
        budget = trial_budget(job, mine)
        if budget is not None and budget < MIN_TRIAL_S:
            _say(job, f"note: {max(0.0, budget):.1f}s left per trial: no more trials started")
            return "time"
        trial = study.ask()
        if _surplus(job, study, trial):
            return "done"
        position = len([t for t in mine if t.state.name != "WAITING"]) + 1
        if run_trial(job, study, trial, budget, position) == "interrupted":
            return "interrupted"


def _surplus(job: Job, study: optuna.Study, trial: optuna.Trial) -> bool:
    """Whether ``--trials`` trials were numbered before this one (another process asked at the same
    moment): then it is dropped unrun (FAIL, ``surplus``: not counted, not listed)."""
    from optuna.trial import TrialState

    before = [t for t in counted(study.get_trials(deepcopy=False)) if t.number < trial.number]
    if len(before) < job.trials:
        return False
    trial.set_user_attr("surplus", True)
    study.tell(trial, state=TrialState.FAIL)
    return True


def trial_budget(job: Job, trials: list[Any]) -> float | None:
    """Seconds for the next trial: the time left over the trials still to start on each worker."""
    if job.deadline is None:
        return None
    to_start = max(1, job.trials - len([t for t in trials if t.state.name != "WAITING"]))
    return (job.deadline - time.time()) / math.ceil(to_start / job.workers)


def run_trial(job: Job, study: optuna.Study, trial: optuna.Trial, budget: float | None, position: int) -> str:
    """Train one trial and tell the study how it went; returns its state's name, or ``interrupted``."""
    from optuna.trial import TrialState

    trial.set_user_attr("host", socket.gethostname())
    trial.set_user_attr("pid", os.getpid())
    params = {p.name: p.suggest(trial) for p in job.space}
    _progress(job, study, position, trial.number, budget)
    t0 = time.monotonic()
    try:
        cfg = job.base.build({**params, **({"max_time": budget} if budget is not None else {})})
    except ConfigError as e:
        return _tell(job, study, trial, TrialState.PRUNED, t0, note=f"settings do not go together: {e}")
    hook = PruningHook(trial)
    try:
        result = _fit(job, cfg, trial.number, hook, t0)
    except Exception as e:
        return _trial_error(job, study, trial, e, t0)
    except BaseException:
        _lose(study, trial)
        raise
    if result.stopped == "interrupted":
        _lose(study, trial)
        return "interrupted"
    monitor = hook.monitor or result.predictor.config.train.monitor
    value = result.metrics["training"].get(monitor)
    trial.set_user_attr("epochs", len(result.history))
    if hook.pruned is not None:
        return _tell(job, study, trial, TrialState.PRUNED, t0, note=f"pruned at epoch {hook.pruned}")
    if value is None or not math.isfinite(value):
        return _tell(job, study, trial, TrialState.PRUNED, t0, note=f"no {monitor} (no epoch finished in time)")
    if hook.mode is not None and {"min": "minimize", "max": "maximize"}[hook.mode] != job.direction:
        _lose(study, trial)
        raise LstmkitError(f"tune: the trials watch {monitor} with --monitor-mode {hook.mode}; pass it to tune too")
    return _tell(job, study, trial, TrialState.COMPLETE, t0, value=float(value), monitor=monitor)


def _trial_error(job: Job, study: optuna.Study, trial: optuna.Trial, error: Exception, t0: float) -> str:
    """A run that raised: diverged, PRUNED; an error of these settings (data too short for them, out
    of memory), FAIL with its note and the tune goes on; anything else, or an error of the starting
    settings (the inputs themselves), ends the tune (the trial is ``lost``: re-run on --resume)."""
    from optuna.trial import TrialState

    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    if isinstance(error, LstmkitError) and text.startswith("training diverged"):
        return _tell(job, study, trial, TrialState.PRUNED, t0, note=text)
    of_settings = isinstance(error, (LstmkitError, MemoryError)) or "out of memory" in text.lower()
    if of_settings and not trial.user_attrs.get("default"):
        return _tell(job, study, trial, TrialState.FAIL, t0, note=text)
    _lose(study, trial)
    raise error


def _fit(job: Job, cfg: Settings, number: int, hook: PruningHook, started: float) -> Any:
    """One trial's training run into ``OUT/trials/<number>/`` (quiet: the tune reports)."""
    from lstmkit.tasks.fit import fit

    folder = Path(job.out) / "trials" / str(number)
    callbacks = [("on_epoch_end", hook)]
    return fit(
        job.task, cfg, job.data, job.valid, folder, overwrite=True, quiet=True, callbacks=callbacks, started=started
    )


class PruningHook:
    """``on_epoch_end``: report the epoch's monitored metric to the trial and stop the run when the
    pruner says so (the trainer then ends with ``stopped == "callback"``)."""

    def __init__(self, trial: optuna.Trial):
        self.trial = trial
        self.pruned: int | None = None
        self.monitor: str | None = None
        self.mode: str | None = None

    def __call__(self, trainer: Any) -> None:
        row = trainer.state.history[-1]
        self.monitor, self.mode = trainer.monitor, trainer.cfg.monitor_mode
        value = float(row.get(trainer.monitor, math.nan))
        epoch = int(row["epoch"])
        self.trial.report(value if math.isfinite(value) else math.nan, epoch)
        if self.trial.should_prune():
            self.pruned = epoch
            trainer.should_stop = True


def _tell(
    job: Job,
    study: optuna.Study,
    trial: optuna.Trial,
    state: Any,
    t0: float,
    value: float | None = None,
    note: str = "",
    monitor: str = "",
) -> str:
    """Record the trial's end (its seconds and note) and say it on stderr."""
    seconds = time.monotonic() - t0
    trial.set_user_attr("seconds", round(seconds, 2))
    if note:
        trial.set_user_attr("note", note)
    if monitor:
        trial.set_user_attr("monitor", monitor)
    study.tell(trial, value if value is not None else None, state=state)
    what = f"{monitor} {value:.6g}" if value is not None else note
    _say(job, f"  #{trial.number} {state.name.lower()}: {what} ({seconds:.0f}s)")
    return str(state.name)


def _lose(study: optuna.Study, trial: optuna.Trial) -> None:
    """Mark a trial whose run did not end (an error, an interrupt) FAIL and ``lost``: re-run on resume."""
    from optuna.trial import TrialState

    trial.set_user_attr("lost", True)
    study.tell(trial, state=TrialState.FAIL)


def _progress(job: Job, study: optuna.Study, position: int, number: int, budget: float | None) -> None:
    """``trial n/N  best <value>  time left <s>`` on stderr."""
    done = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    best = "-"
    if done:
        pick = min if job.direction == "minimize" else max
        best = f"{pick(float(t.value or 0.0) for t in done):.6g}"
    left = "-" if job.deadline is None else f"{max(0.0, job.deadline - time.time()):.0f}s"
    each = "" if budget is None else f", {budget:.0f}s for it"
    _say(job, f"trial {position}/{job.trials}  best {best}  time left {left}  (#{number}{each})")


def _say(job: Job, text: str) -> None:
    if not job.quiet:
        print(text, file=sys.stderr, flush=True)


def worker_process(job: Job, index: int) -> None:
    """The body of an extra ``--workers`` process: its share of threads, then :func:`run_worker`;
    an error is one line on stderr and exit code 2."""
    from lstmkit.tasks.fit import set_threads

    set_threads(job.threads)
    try:
        code = 130 if run_worker(job, index) == "interrupted" else 0
    except (LstmkitError, OSError) as e:
        print(f"error: worker {index}: {str(e).splitlines()[0] if str(e) else type(e).__name__}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)
