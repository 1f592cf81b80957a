"""What each generic command does with its parsed arguments (the Python API does the work).

Results go to stdout (or ``--output``), progress and notes to stderr; user errors
(:class:`~lstmkit.errors.LstmkitError`, unreadable files) print one line ``error: ...`` and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from typing import Any

from lstmkit.cli.options import given_settings
from lstmkit.config import Settings
from lstmkit.errors import LstmkitError, ModelFolderError
from lstmkit.tasks.spec import TaskSpec


def run_guarded(fn: Callable[[], int | None], debug: bool) -> int:
    """Run ``fn``; user errors become ``error: <first line>`` on stderr and exit code 2."""
    try:
        return int(fn() or 0)
    except (LstmkitError, OSError) as e:
        if debug:
            raise
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except (MemoryError, RuntimeError) as e:
        if debug or not (isinstance(e, MemoryError) or _out_of_memory(e)):
            raise
        print("error: out of memory (try a smaller --batch-size, --hidden-size or input limit)", file=sys.stderr)
        return 2
    finally:
        if "torch.distributed" in sys.modules:
            from lstmkit.trainer.distributed import shutdown

            shutdown()


def _out_of_memory(e: BaseException) -> bool:
    """torch's failed allocations (CPU: a RuntimeError; CUDA: torch.OutOfMemoryError)."""
    text = str(e)
    return "can't allocate memory" in text or "out of memory" in text.lower()


def dispatch(args: argparse.Namespace) -> int:
    return {"train": train, "evaluate": evaluate, "predict": predict, "command": command}[args.run](args)


def options(args: argparse.Namespace, cls: type[Settings]) -> Settings:
    """An options object from the flags typed for it."""
    return cls().build(given_settings(args, cls), text=True)


def _emit(text: str, output: str | None) -> None:
    from lstmkit.trainer.distributed import is_main_process

    if not is_main_process():
        return
    if output and output != "-":
        from lstmkit.io import atomic_write_text

        atomic_write_text(output, text)
        print(f"wrote {output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


def check_writable(path: str | None) -> None:
    from lstmkit.io import check_writable as check

    check(path)


def _threads(args: argparse.Namespace) -> None:
    from lstmkit.tasks.fit import set_threads

    set_threads(args.threads)


def _inputs(spec: TaskSpec, args: argparse.Namespace, data: Any, valid: Any, extras: bool = True) -> tuple[Any, Any]:
    """``--data``/``--valid`` with the task's extra input arguments folded in (translate's pairs);
    ``extras=False`` folds a lone file (``--test``) with only the arguments that are not files."""
    if spec.inputs:
        module, fn = spec.inputs.split(":")
        extra = {a.name: getattr(args, a.name, None) for a in (*spec.train_args, *spec.evaluate_args)}
        if not extras:
            extra = {k: v for k, v in extra.items() if k not in ("source", "target", "valid_source", "valid_target")}
        return getattr(importlib.import_module(module), fn)(data, valid, extra)
    return data, valid


# ---------------------------------------------------------------------------- train
def resolved_config(args: argparse.Namespace, spec: TaskSpec) -> Settings:
    """Defaults <- ``--config`` TOML <- flags on the command line."""
    from lstmkit.config import read_toml

    cfg = spec.config()
    if args.config:
        cfg = cfg.build(read_toml(args.config, spec.config), source=args.config)
    return cfg.build(given_settings(args, spec.config), text=True)


def train(args: argparse.Namespace) -> int:
    spec: TaskSpec = args.spec
    cfg = resolved_config(args, spec)
    data, valid = _inputs(spec, args, args.data, args.valid)
    test = _inputs(spec, args, args.test, None, extras=False)[0] if args.test is not None else None
    if data is None:
        raise LstmkitError(f"lstmkit {spec.name} train: --data is required")
    if args.resume and args.overwrite:
        raise LstmkitError("--resume and --overwrite exclude each other")
    from lstmkit import tasks
    from lstmkit.io import dumps_json
    from lstmkit.tasks.fit import check_out, fit

    if args.dry_run:
        check_out(args.out, spec.name, resume=args.resume, overwrite=args.overwrite)
        run = tasks.task_class(spec.name)(cfg)
        run.check(data, valid)
        if test is not None:
            run.check(test)
        paths = {"data": data, "valid": valid, "test": test, "out": args.out}
        _emit(dumps_json({**cfg.to_dict(), "paths": paths}) + "\n", None)
        return 0
    _threads(args)
    result = fit(
        spec.name,
        cfg,
        data,
        valid,
        args.out,
        test=test,
        resume=args.resume,
        overwrite=args.overwrite,
        quiet=args.quiet,
        started=getattr(args, "started", None),
    )
    if args.json:
        _emit(dumps_json(result.metrics) + "\n", None)
    else:
        _emit(_summary(result.metrics, args.out), None)
    if result.stopped == "interrupted":
        again = [a for a in getattr(args, "argv", []) if a not in ("--overwrite", "--resume")] + ["--resume"]
        print(
            f"interrupted: the best model so far is in {args.out}; to go on: lstmkit {' '.join(again)}", file=sys.stderr
        )
        return 128 + int(result.signal or 2)
    return 0


def _summary(metrics: dict[str, Any], out: str) -> str:
    lines = [f"model folder: {out}"]
    for part in ("training", "valid", "test"):
        m = metrics.get(part)
        if isinstance(m, dict):
            nums = "  ".join(f"{k} {v:.4g}" for k, v in m.items() if isinstance(v, float))
            lines.append(f"{part}: {nums}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- evaluate / predict
def _load(args: argparse.Namespace, spec: TaskSpec) -> Any:
    """The predictor of --model: a model folder (torch), or an export folder (lstmkit.runtime, no torch)."""
    from lstmkit import runtime, tasks

    header = runtime.read_header(args.model)
    if header is not None:
        if header.get("task") != spec.name:
            raise ModelFolderError(f"{args.model}: a {header.get('task')!r} export, not a {spec.name!r} model")
        return runtime.load(args.model, threads=getattr(args, "threads", None))
    return tasks.task_class(spec.name).Predictor.load(args.model)


def evaluate(args: argparse.Namespace) -> int:
    spec: TaskSpec = args.spec
    opts = options(args, spec.evaluate)
    data, _ = _inputs(spec, args, args.data, None)
    if data is None:
        raise LstmkitError(f"lstmkit {spec.name} evaluate: --data is required")
    _threads(args)
    predictor = _load(args, spec)
    metrics = predictor.evaluate_data(data, opts)
    from lstmkit.io import dumps_json

    _emit(dumps_json(metrics) + "\n" if args.json else predictor.format_metrics(metrics).rstrip("\n") + "\n", None)
    return 0


def predict(args: argparse.Namespace) -> int:
    spec: TaskSpec = args.spec
    opts = options(args, spec.predict)
    check_writable(args.output)
    _threads(args)
    predictor = _load(args, spec)
    items = predictor.read(args.data, opts)
    outputs = predictor.predict_items(items, opts)
    from lstmkit.io import dumps_json

    text = dumps_json(outputs) + "\n" if args.json else predictor.format_outputs(items, outputs, opts)
    _emit(text, args.output)
    return 0


def command(args: argparse.Namespace) -> int:
    """An extra action: ``run(args, options)`` of its declaration."""
    cmd = args.extra
    opts = options(args, cmd.options)
    _threads(args)
    module, fn = cmd.run.split(":")
    plain = {a.name: getattr(args, a.name) for a in cmd.args}
    if "output" in plain:
        check_writable(plain["output"])
    if cmd.model:
        plain["model"] = args.model
    if cmd.overwrite:
        plain["overwrite"] = args.overwrite
    if cmd.given:
        plain["given"] = given_settings(args, cmd.options)
        plain["started"] = getattr(args, "started", None)
    return int(getattr(importlib.import_module(module), fn)(plain, opts) or 0)
