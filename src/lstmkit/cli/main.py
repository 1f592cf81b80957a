"""``lstmkit``: the command line, built from the tasks' declarations (argument parsing only).

Every task gets the same shape from its :class:`lstmkit.tasks.spec.TaskSpec`::

    lstmkit <task> train    --data F [--valid F] [--test F] --out DIR [--config F.toml] [--dry-run]
                            [--resume | --overwrite] [--threads N] [--quiet] [--json] [--<setting> V ...]
    lstmkit <task> evaluate --model DIR --data F [--json] [--threads N] [--<option> V ...]
    lstmkit <task> predict  --model DIR [--data F|-] [--output F] [--json] [--threads N] [--<option> V ...]
    lstmkit <task> tune     --data F [--valid F] --out DIR [--trials N] [--max-time S] [--space F.toml]
                            [--storage F] [--resume] [--workers N] [--<setting> V ...]   (every task)
    lstmkit <task> <extra>  ...                    (forecast backtest, lm generate, speech manifest)
    lstmkit quickstart | inspect

Only the chosen task's ``config`` module is imported to build its parser, and torch only when a
command runs, so ``--help`` answers at once. The work is in :mod:`lstmkit.cli.run`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from functools import partial

from lstmkit import __version__, tasks, tune
from lstmkit.cli.options import LstmkitParser, add_settings
from lstmkit.tasks.spec import Arg, Command, TaskSpec

#: commands that are not tasks: name -> "module:attribute" of its Command
TOOLS = {
    "quickstart": "lstmkit.tasks.forecast.config:QUICKSTART",
    "inspect": "lstmkit.inspect:COMMAND",
    "build-kernels": "lstmkit.doctor:BUILD_KERNELS",
    "doctor": "lstmkit.doctor:DOCTOR",
    "serve": "lstmkit.serve.config:SERVE",
    "export": "lstmkit.export.command:COMMAND",
}
#: old spellings answered with a hint, for every task's evaluate / predict
COMMON_HINTS = {"--input": "--data", "--output-format": "--json"}
PREDICT_HINTS = {**COMMON_HINTS, "--out": "--output"}


def _threads(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="CPU threads for torch and lstmkit's kernels (default: every core)",
    )


def _args(p: argparse.ArgumentParser, args: Sequence[Arg]) -> None:
    for a in args:
        name = "--" + a.name.replace("_", "-")
        if a.flag:
            p.add_argument(name, dest=a.name, action="store_true", help=a.help)
        else:
            p.add_argument(name, dest=a.name, required=a.required, default=a.default, help=a.help)


def _add_train(sub: argparse._SubParsersAction, spec: TaskSpec) -> None:
    p = sub.add_parser(
        "train",
        help="train a model and write its folder",
        description=f"Train a {spec.name} model on --data and write the model folder --out.",
        hints=spec.renamed,
    )
    io = p.add_argument_group("files and run")
    io.add_argument("--data", default=None, help=f"training data: {spec.data_help}")
    io.add_argument("--valid", default=None, help=spec.valid_help)
    io.add_argument("--test", default=None, help="test data, evaluated after training into metrics.json")
    _args(io, spec.train_args)
    io.add_argument("--out", required=True, help="the model folder to write")
    io.add_argument(
        "--config",
        default=None,
        metavar="FILE.toml",
        help="settings from a TOML file (keys as below, '-' or '_', flat or in [lstm]/[train] "
        "tables); flags on the command line win",
    )
    io.add_argument(
        "--dry-run",
        action="store_true",
        help="check files, settings and --out, print the resolved config as JSON, do not train",
    )
    io.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint/ (same final metrics)")
    io.add_argument("--overwrite", action="store_true", help="replace a model already in --out")
    io.add_argument("--quiet", action="store_true", help="no progress output on stderr")
    io.add_argument("--json", action="store_true", help="print the final metrics as one JSON object")
    _threads(io)
    add_settings(p, spec.config(), spec.name)
    p.set_defaults(run="train", spec=spec)


def _add_evaluate(sub: argparse._SubParsersAction, spec: TaskSpec) -> None:
    p = sub.add_parser(
        "evaluate",
        help="metrics of a model on labelled data",
        description=f"Evaluate a {spec.name} model on --data (read as in training).",
        hints={**COMMON_HINTS, **spec.renamed},
    )
    p.add_argument("--model", required=True, help="model folder")
    p.add_argument("--data", default=None, help=f"labelled data: {spec.data_help}")
    _args(p, spec.evaluate_args)
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    _threads(p)
    add_settings(p, spec.evaluate(), "evaluate")
    p.set_defaults(run="evaluate", spec=spec)


def _add_predict(sub: argparse._SubParsersAction, spec: TaskSpec) -> None:
    p = sub.add_parser(
        "predict",
        help="outputs of a model, one per input",
        description=f"Run a {spec.name} model on --data; results on stdout or --output, progress and logs on stderr.",
        hints={**PREDICT_HINTS, **spec.renamed},
    )
    p.add_argument("--model", required=True, help="model folder")
    p.add_argument("--data", default="-", help=f"{spec.predict_help} (default: -, standard input)")
    p.add_argument("--output", default=None, help="write the results to this file (default: stdout)")
    p.add_argument("--json", action="store_true", help="print the outputs as JSON (one list, one entry per input)")
    _threads(p)
    add_settings(p, spec.predict(), "predict")
    p.set_defaults(run="predict", spec=spec)


def add_command(sub: argparse._SubParsersAction, cmd: Command, spec: TaskSpec | None = None) -> None:
    """An extra action or tool from its :class:`~lstmkit.tasks.spec.Command`."""
    p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help)
    if cmd.model:
        p.add_argument("--model", required=True, help="model folder")
    _args(p, cmd.args)
    if cmd.overwrite:
        p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    _threads(p)
    add_settings(p, cmd.options(), cmd.name)
    p.set_defaults(run="command", extra=cmd, spec=spec)


def _add_task(p: LstmkitParser, spec: TaskSpec) -> None:
    sub = p.add_subparsers(dest="action", metavar="<action>")
    _add_train(sub, spec)
    _add_evaluate(sub, spec)
    _add_predict(sub, spec)
    for cmd in (*spec.commands, tune.command(spec)):  # tune: one declaration for every task
        add_command(sub, cmd, spec)


def build_parser(argv: Sequence[str] = ()) -> LstmkitParser:
    """The parser; only the command named in ``argv`` gets its options (the others their one line)."""
    import importlib

    parser = LstmkitParser(
        prog="lstmkit",
        description="LSTM networks made practical: train, evaluate and use LSTM models for six tasks.",
        epilog="Run `lstmkit <command> --help` for its actions, `lstmkit <task> <action> --help` for every "
        "option. Errors print one line and exit with code 2.",
    )
    parser.add_argument("--version", action="version", version=f"lstmkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<command>", parser_class=LstmkitParser)
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, summary in tasks.TASKS.items():
        p = sub.add_parser(name, help=summary, description=f"lstmkit {name}: {summary}.")
        if name == wanted:
            spec = tasks.get_spec(name)
            p.description = f"lstmkit {name}: {summary}." + (f"\n\n{spec.description}" if spec.description else "")
            _add_task(p, spec)
            # unknown flags are reported by the top parser: it answers old spellings
            action = next((a for a in argv[argv.index(name) + 1 :] if not a.startswith("-")), None)
            common = PREDICT_HINTS if action in ("predict", "backtest") else COMMON_HINTS
            parser.hints.update({**common, **spec.renamed})
    for name, where in TOOLS.items():
        module, attr = where.split(":")
        cmd = getattr(importlib.import_module(module), attr) if name == wanted else None
        if cmd is None:
            sub.add_parser(name, help=_TOOL_HELP[name])
        else:
            add_command(sub, cmd)
    return parser


_TOOL_HELP = {
    "quickstart": "train the classic sine-wave LSTM in under a minute",
    "inspect": "heatmaps of the gates and cell state of a trained model",
    "build-kernels": "compile the C++ LSTM kernel now (once per machine and torch version)",
    "doctor": "check the installation, the compiled kernel and data folders (ok/warn/fail)",
    "serve": "serve a model folder as an HTTP JSON API (predict, streaming sessions, metrics)",
    "export": "export a model folder as ONNX graphs for the torch-free runtime (lstmkit.runtime) and serve",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lstmkit`` console script and ``python -m lstmkit``; returns the exit code."""
    import time

    from lstmkit.cli.run import dispatch, run_guarded

    started = time.monotonic()  # --max-time counts from here
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version or a usage error (already printed)
        return int(e.code or 0)
    if getattr(args, "run", None) is None:  # `lstmkit` or `lstmkit <task>` alone: that level's help
        target = parser if getattr(args, "command", None) is None else _subparser(parser, args.command)
        target.print_help(sys.stderr)
        return 2
    args.started, args.argv = started, argv
    return run_guarded(partial(dispatch, args), getattr(args, "debug", False))


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[name]
    return parser


if __name__ == "__main__":
    sys.exit(main())
