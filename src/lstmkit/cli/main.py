"""``lstmkit``: the top-level command line. Argument parsing only; the work is in the Python API.

Each task has ``cli/<task>.py`` with ``register(subparsers)`` adding ``lstmkit <task> ...``;
its name goes in :data:`TASK_MODULES`. A task whose CLI module does not exist yet is skipped.
Every command sets ``func`` (``set_defaults(func=...)``), called as ``func(args) -> int | None``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

from lstmkit import __version__
from lstmkit.cli.common import LstmkitParser, apply_config_file, run_guarded

TASK_MODULES = ["forecast", "classify", "lm", "tag", "translate", "speech"]
TOOL_MODULES = ["inspect"]  # commands that are not tasks


def _import_cli(name: str) -> ModuleType | None:
    """``lstmkit.cli.<name>``, or None if that very module does not exist (other errors propagate)."""
    full = f"lstmkit.cli.{name}"
    try:
        return importlib.import_module(full)
    except ModuleNotFoundError as e:
        if e.name == full:
            return None
        raise


def build_parser() -> LstmkitParser:
    """The whole parser tree: ``lstmkit [--version] <command> ...``."""
    parser = LstmkitParser(
        prog="lstmkit",
        description="LSTM networks made practical: train, evaluate, predict and inspect LSTM models.",
        epilog="Run `lstmkit <command> --help` for a command's options. Errors exit with code 2.",
    )
    parser.add_argument("--version", action="version", version=f"lstmkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name in TASK_MODULES + TOOL_MODULES:
        module = _import_cli(name)
        if module is not None:
            module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lstmkit`` console script and ``python -m lstmkit``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv == ["--version"]:  # answer at once, without importing every task's CLI
        print(f"lstmkit {__version__}")
        return 0
    parser = build_parser()
    debug = "--debug" in argv

    def run() -> int | None:
        args = apply_config_file(parser, parser.parse_args(argv), argv)
        func = getattr(args, "func", None)
        if func is None:  # `lstmkit` or `lstmkit <task>` alone: that level's help, exit 2
            try:
                parser.parse_args(argv + ["--help"])
            except SystemExit:
                pass
            return 2
        return func(args)

    try:
        return run_guarded(run, debug)
    finally:
        from lstmkit.train.distributed import shutdown

        shutdown()


if __name__ == "__main__":
    sys.exit(main())
