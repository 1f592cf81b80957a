"""``lstmkit <task> tune``: the command line's entry point (:func:`run`).

Settings resolve as in ``train`` (defaults <- ``--config`` <- flags); every setting given either
way is fixed in every trial, and ``--max-time`` becomes the whole tune's budget. Inputs, the space
and ``--out`` are checked before any trial runs (one-line errors, exit 2). Progress goes to
stderr, the result to stdout (``--json``: one object).
"""

from __future__ import annotations

import importlib
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from lstmkit import tasks
from lstmkit.config import Settings, read_toml
from lstmkit.errors import LstmkitError
from lstmkit.io import atomic_write_text, check_writable, dumps_json
from lstmkit.tasks.spec import TaskSpec
from lstmkit.tune import report
from lstmkit.tune.journal import Job, create_study, import_optuna, load_study, open_study, recover
from lstmkit.tune.space import build_space, default_params
from lstmkit.tune.study import run_worker, worker_process

#: what a tune writes in --out (--overwrite removes these; anything else there is refused)
OUTPUTS = {"trials", "best", "trials.csv", "best_config.toml", "history.png", "importance.png", "journal.log"}


def run(args: dict[str, Any], opts: Settings) -> int:
    """Run the tune described by the parsed arguments ``args`` (see :func:`lstmkit.tune.command`, which declares them)."""
    started = args.get("started") or time.monotonic()
    spec = _spec_of(opts)
    trials, workers = _count(args["trials"], "--trials"), _count(args["workers"], "--workers")
    base, fixed = base_config(spec, args)
    max_time = base.train.max_time  # type: ignore[attr-defined]
    base = base.build(max_time=None)  # each trial gets its own budget
    space = build_space(spec.name, spec.config, fixed, args.get("space"))
    data, valid = _inputs(spec, args)
    out = Path(args["out"])
    journal = Path(args.get("storage") or out / "journal.log")
    check_folder(out, journal, resume=bool(args.get("resume")), overwrite=bool(args.get("overwrite")))
    import_optuna()
    direction = _direction(spec, base, data, valid)
    job = Job(
        task=spec.name,
        base=base,
        space=space,
        data=data,
        valid=valid,
        out=str(out),
        storage=str(journal),
        trials=trials,
        direction=direction,
        deadline=_deadline(started, max_time),
        workers=workers,
        seed=base.train.seed,  # type: ignore[attr-defined]
        quiet=bool(args.get("quiet")),
        defaults=default_params(base, space),
    )
    _start(job, bool(args.get("resume")))
    reason = _run_workers(job)
    code = _finish(job, spec, time.monotonic() - started, bool(args.get("json")))
    if reason == "interrupted":
        print("interrupted: the finished trials are kept; run the same command with --resume to go on", file=sys.stderr)
        return 130
    return code


def _spec_of(opts: Settings) -> TaskSpec:
    """The task whose settings class ``opts`` is."""
    for name in tasks.TASKS:
        spec = tasks.get_spec(name)
        if type(opts) is spec.config:
            return spec
    raise LstmkitError(f"tune: no task has the settings {type(opts).__name__}")


def _count(text: Any, flag: str) -> int:
    """A positive whole number given as ``flag``, or a one-line error."""
    try:
        n = int(str(text))
    except ValueError:
        raise LstmkitError(f"{flag} must be a whole number, got {text!r}") from None
    if n < 1:
        raise LstmkitError(f"{flag} must be >= 1, got {n}")
    return n


def base_config(spec: TaskSpec, args: dict[str, Any]) -> tuple[Settings, set[str]]:
    """The settings every trial starts from (defaults <- ``--config`` <- flags) and the names of
    those given (fixed: never searched)."""
    cfg = spec.config()
    fixed: set[str] = set()
    if args.get("config"):
        values = read_toml(args["config"], spec.config)
        cfg = cfg.build(values, source=args["config"])
        fixed |= {k.replace("-", "_") for k in values}
    given = args.get("given") or {}
    cfg = cfg.build(given, text=True)
    return cfg, fixed | set(given)


def _inputs(spec: TaskSpec, args: dict[str, Any]) -> tuple[Any, Any]:
    """``--data``/``--valid`` with the task's extra input arguments folded in (translate's pairs)."""
    data, valid = args.get("data"), args.get("valid")
    if spec.inputs:
        module, fn = spec.inputs.split(":")
        extra = {a.name: args.get(a.name) for a in spec.train_args}
        data, valid = getattr(importlib.import_module(module), fn)(data, valid, extra)
    if data is None:
        raise LstmkitError(f"lstmkit {spec.name} tune: --data is required")
    return data, valid


def check_folder(out: Path, journal: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse ``--out`` before any work: a file, another folder's files, a tune already there
    without ``--resume``/``--overwrite`` (which removes it), ``--resume`` without a journal."""
    if resume and overwrite:
        raise LstmkitError("--resume and --overwrite exclude each other")
    if out.exists() and not out.is_dir():
        raise LstmkitError(f"--out {out}: exists and is not a folder")
    check_writable(out / "trials.csv", "--out")
    if resume:
        if not journal.is_file():
            raise LstmkitError(f"--resume: no journal at {journal}: nothing to resume (run without --resume)")
        return
    known = OUTPUTS | ({journal.name} if journal.parent == out else set())
    others = sorted(p.name for p in out.iterdir() if not _ours(p.name, known)) if out.is_dir() else []
    if others:
        raise LstmkitError(f"--out {out}: holds other files ({others[0]}, ...): choose a new or empty folder")
    if journal.is_file() or (out / "trials").is_dir():
        if not overwrite:
            raise LstmkitError(
                f"--out {out}: holds a tune ({journal}); pass --resume to continue it or --overwrite to start afresh"
            )
        journal.unlink(missing_ok=True)
        if out.is_dir():
            shutil.rmtree(out)


def _ours(name: str, known: set[str]) -> bool:
    """Whether a file in --out is one a tune writes (hidden files: its staging and lock files)."""
    return name in known or name.startswith(".") or any(name.startswith(k + ".") for k in known)


def _direction(spec: TaskSpec, base: Settings, data: Any, valid: Any) -> str:
    """``minimize`` or ``maximize``: the task's monitor mode, as a training run would resolve it;
    the inputs are checked on the way (a missing file is an error before any trial)."""
    run = tasks.task_class(spec.name)(base)
    run.check(data, valid)
    resolve = getattr(run, "resolve_monitor_mode", None)  # speech: the mode follows --monitor
    if callable(resolve):
        resolve()
    return "minimize" if run.config.train.monitor_mode == "min" else "maximize"


def _deadline(started: float, max_time: float | None) -> float | None:
    """The wall-clock time by which the trials end: ``--max-time`` from ``started``, less a
    reserve for the outputs (copy, CSV, plots)."""
    if max_time is None:
        return None
    reserve = min(30.0, max(3.0, 0.03 * max_time))
    return time.time() + (started + max_time - time.monotonic()) - reserve


def _start(job: Job, resume: bool) -> None:
    """Create the study, or open it and re-queue the trials a killed process left; says so."""
    if resume:
        study = open_study(job)
        again = recover(study, job.out)
        if again and not job.quiet:
            print(f"note: --resume: trials {', '.join(map(str, again))} did not finish: run again", file=sys.stderr)
    else:
        study = create_study(job)
    if not job.quiet:
        searched = "; ".join(p.describe() for p in job.space)
        print(
            f"tune {job.task}: {job.trials} trials, {job.direction} the monitor; searching {searched}", file=sys.stderr
        )


def _run_workers(job: Job) -> str:
    """Run the trials here, and in ``job.workers - 1`` more processes sharing the threads."""
    if job.workers == 1:
        return run_worker(job)
    import multiprocessing

    import torch

    total = torch.get_num_threads()
    job.threads = max(1, total // job.workers)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=worker_process, args=(job, i)) for i in range(1, job.workers)]
    for p in procs:
        p.start()
    torch.set_num_threads(job.threads)
    try:
        return run_worker(job, 0)
    finally:
        for p in procs:
            p.join()
        torch.set_num_threads(total)
        failed = [str(p.exitcode) for p in procs if p.exitcode]
        if failed:
            print(
                f"note: {len(failed)} worker process(es) ended with an error (exit {', '.join(failed)})",
                file=sys.stderr,
            )


def _finish(job: Job, spec: TaskSpec, elapsed: float, as_json: bool) -> int:
    """Write trials.csv, best/, best_config.toml and the plots; print the result."""
    study = load_study(job.storage)
    out = Path(job.out)
    trials = [t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get("surplus")]
    atomic_write_text(out / "trials.csv", report.trials_csv(trials, job.space))
    if not any(t.state.name == "COMPLETE" for t in trials):
        raise LstmkitError(
            f"tune: no trial finished ({len(trials)} started; see {out / 'trials.csv'}): "
            "give it more --max-time, or fewer --trials / --epochs"
        )
    best = study.best_trial
    monitor = str(best.user_attrs.get("monitor", job.base.train.monitor))  # type: ignore[attr-defined]
    folder = report.copy_best(out, best.number)
    header = (
        f"lstmkit {job.task} tune: trial {best.number}, {monitor} {best.value:.6g}\n"
        f"use: lstmkit {job.task} train --config best_config.toml --data ... --out ..."
    )
    cfg = job.base.build(best.params)
    atomic_write_text(out / "best_config.toml", report.config_toml(cfg, spec.config(), header))
    notes = report.plots(study, out, monitor)
    if folder is None:
        notes.append(f"best/ not written: trial {best.number}'s folder is on the machine that ran it")
    for note in notes:
        if not job.quiet:
            print(f"note: {note}", file=sys.stderr)
    result = report.summary(study, monitor, out, folder, elapsed)
    sys.stdout.write(dumps_json(result) + "\n" if as_json else report.summary_text(result))
    sys.stdout.flush()
    return 0
