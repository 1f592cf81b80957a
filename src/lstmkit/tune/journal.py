"""The study of ``lstmkit <task> tune`` in its journal file, and what every process gets (:class:`Job`).

The study lives in a journal file (``JournalStorage(JournalFileBackend(path))``): every process
that opens the same file works on the same study, so ``--workers N`` starts N processes on it and
processes on other machines can join it (``--resume`` on a shared file). A process killed
mid-trial leaves the trial RUNNING; ``--resume`` marks it FAIL (``lost``) and runs its settings
again (:func:`recover`). Finished trials are never repeated.
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lstmkit.config import Settings
from lstmkit.config_values import label, show
from lstmkit.errors import LstmkitError
from lstmkit.tune.space import Param

if TYPE_CHECKING:
    import optuna

STUDY = "lstmkit-tune"
LOCK_GRACE_S = 10  # a journal lock held longer was left by a killed process: it is broken
OPTUNA_MISSING = "lstmkit tune needs Optuna: pip install 'lstmkit[tune]'"


@dataclass
class Job:
    """Everything a process running trials needs (plain values: it is sent to ``--workers``)."""

    task: str
    base: Settings  # the settings every trial starts from (flags and --config), max_time unset
    space: list[Param]
    data: Any
    valid: Any
    out: str
    storage: str
    trials: int
    direction: str  # "minimize" or "maximize"
    deadline: float | None = None  # time.time() by which the trials must be done (None: no budget)
    workers: int = 1
    seed: int = 0
    quiet: bool = False
    threads: int | None = None
    defaults: dict[str, Any] = field(default_factory=dict)  # the first trial's settings


def import_optuna() -> Any:
    """Optuna, quiet (its own log lines off), or a one-line error naming the extra to install."""
    try:
        import optuna
    except ImportError:
        raise LstmkitError(OPTUNA_MISSING) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def storage(path: str) -> Any:
    """The journal file storage at ``path`` (created when missing)."""
    optuna = import_optuna()
    from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    lock = JournalFileSymlinkLock(str(path), grace_period=LOCK_GRACE_S)
    return optuna.storages.JournalStorage(JournalFileBackend(str(path), lock_obj=lock))


def create_study(job: Job) -> optuna.Study:
    """A new study in ``job.storage`` whose first trial (enqueued) runs ``job.defaults``."""
    optuna = import_optuna()
    study = optuna.create_study(study_name=STUDY, storage=storage(job.storage), direction=job.direction)
    study.set_user_attr("task", job.task)
    study.set_user_attr("space", [p.describe() for p in job.space])
    study.set_user_attr("settings", job.base.to_dict())
    study.enqueue_trial(job.defaults, user_attrs={"default": True})
    return study


def load_study(path: str) -> optuna.Study:
    """The tune's study in the journal ``path``, or a one-line error when it holds none."""
    optuna = import_optuna()
    try:
        return optuna.load_study(study_name=STUDY, storage=storage(path))
    except KeyError:
        raise LstmkitError(f"--resume: {path} holds no lstmkit tune") from None


def open_study(job: Job) -> optuna.Study:
    """The study in ``job.storage``, checked to be a tune of the same task, in the same direction,
    with the same fixed settings."""
    study = load_study(job.storage)
    task = study.user_attrs.get("task")
    if task != job.task:
        raise LstmkitError(f"--resume: {job.storage} is a tune of {task!r}, not of {job.task!r}")
    if study.direction.name.lower() != job.direction:
        raise LstmkitError(
            f"--resume: the study {study.direction.name.lower()}s its metric; this command would {job.direction} it "
            "(give the --monitor / --monitor-mode it was started with)"
        )
    _check_settings(study, job)
    return study


#: settings a process joining or resuming a study may change (where and how a run is followed)
MAY_DIFFER = {"device", "log_to", "max_time"}


def _check_settings(study: optuna.Study, job: Job) -> None:
    """Refuse to go on with other fixed settings than the study started with (its trials would not
    compare); a changed space is only noted."""
    saved = study.user_attrs.get("settings")
    if saved is not None:
        was = type(job.base).from_dict(saved).flat()
        for name, value in job.base.flat().items():
            if name not in MAY_DIFFER and was.get(name) != value:
                raise LstmkitError(
                    f"--resume: the study's trials ran with {label(name)} {show(was.get(name))}, not {show(value)}: "
                    "give the settings it was started with"
                )
    if study.user_attrs.get("space") not in (None, [p.describe() for p in job.space]) and not job.quiet:
        print("note: --resume: the search space differs from the one the study started with", file=sys.stderr)


def recover(study: optuna.Study, out: str) -> list[int]:
    """Mark the trials a killed process left RUNNING on this machine as FAIL (``lost``) and enqueue
    the settings of every lost trial not yet re-run; returns their numbers."""
    from optuna.trial import TrialState

    from lstmkit.io import clear_staging

    trials = study.get_trials(deepcopy=False)
    rerun = {t.user_attrs.get("rerun_of") for t in trials}
    again = []
    for t in trials:
        if t.state == TrialState.RUNNING and _dead(t.user_attrs):
            study._storage.set_trial_user_attr(t._trial_id, "lost", True)
            study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        elif not (t.state == TrialState.FAIL and t.user_attrs.get("lost")):
            continue
        if t.number in rerun:
            continue
        clear_staging(Path(out) / "trials" / str(t.number))
        attrs = {"rerun_of": t.number, **({"default": True} if t.user_attrs.get("default") else {})}
        study.enqueue_trial(dict(t.params), user_attrs=attrs)
        again.append(t.number)
    return again


def _dead(attrs: dict[str, Any]) -> bool:
    """Whether the process that ran a RUNNING trial is gone (known only for this machine's)."""
    if attrs.get("host") is None:  # killed between starting the trial and naming its process
        return True
    if attrs.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(attrs["pid"]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def counted(trials: list[Any]) -> list[Any]:
    """The trials that count toward ``--trials``: all but the lost ones (their re-runs count) and
    those dropped unrun."""
    return [t for t in trials if not (t.user_attrs.get("lost") or t.user_attrs.get("surplus"))]
