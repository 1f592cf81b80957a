"""Shared pieces of the command line: common training options, --config files, error handling.

Task CLI files (``cli/<task>.py``) do::

    p = sub.add_parser("train", help="...")          # ArgumentDefaultsHelpFormatter is automatic
    add_train_options(p)                             # --data --valid --out --config --epochs ...
    p.add_argument("--window", type=int, default=48, help="...")
    p.set_defaults(func=cmd_train)                   # cmd_train(args) -> int | None

    def cmd_train(args):
        cfg = train_config_from_args(args)           # a TrainConfig from the common options
        ...
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lstmkit.errors import LstmkitError
from lstmkit.train.config import TrainConfig


class DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows ``(default: X)`` after each option's help, unless the help already says its default
    or the option is required."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or getattr(action, "required", False):
            return text
        return super()._get_help_string(action)


class LstmkitParser(argparse.ArgumentParser):
    """ArgumentParser whose help shows every default, with a ``--debug`` flag on every command.

    Sub-parsers made through ``add_subparsers`` inherit this class, so every command gets both.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("formatter_class", DefaultsFormatter)
        super().__init__(*args, **kwargs)
        # SUPPRESS: an unset --debug of a sub-command never overwrites a parent's value
        self.add_argument(
            "--debug",
            action="store_true",
            default=argparse.SUPPRESS,
            help="show the full traceback on errors (default: off)",
        )


def add_train_options(
    parser: argparse.ArgumentParser, *, out_default: str = "runs/model", data_required: bool = False
) -> argparse.ArgumentParser:
    """Add the options every ``<task> train`` shares. Tasks may change defaults afterwards with
    ``parser.set_defaults(lr=..., epochs=...)``."""
    d = TrainConfig()
    a = parser.add_argument
    a("--data", required=data_required, default=None, help="training data file or folder")
    a("--valid", default=None, help="validation data (default: a split of --data, task-dependent)")
    a("--out", default=out_default, help="output model folder")
    a(
        "--config",
        default=None,
        metavar="FILE",
        help="TOML file of option values (keys as the long options, '-' or '_'); command-line flags win",
    )
    a("--epochs", type=int, default=d.epochs, help="maximum number of epochs")
    a("--batch-size", type=int, default=d.batch_size, help="global batch size")
    a("--lr", type=float, default=d.lr, help="learning rate")
    a("--optimizer", choices=["adamw", "sgd"], default=d.optimizer, help="optimizer")
    a("--momentum", type=float, default=d.momentum, help="SGD momentum")
    a("--weight-decay", type=float, default=d.weight_decay, help="weight decay (L2)")
    a("--l1", type=float, default=d.l1, help="L1 penalty coefficient on all weights")
    a("--schedule", choices=["none", "cosine", "plateau"], default=d.schedule, help="learning-rate schedule")
    a("--clip-grad", type=float, default=d.clip_grad, help="max gradient norm (0 = no clipping)")
    a("--patience", type=int, default=d.patience, help="early-stopping patience in epochs (0 = off)")
    a("--monitor", default=d.monitor, help="validation metric for early stopping / best model")
    a(
        "--monitor-mode",
        choices=["min", "max"],
        default=d.mode,
        help="whether --monitor is better smaller (min) or larger (max)",
    )
    a("--hidden-size", type=int, default=128, help="LSTM hidden units")
    a("--num-layers", type=int, default=1, help="stacked LSTM layers")
    a("--dropout", type=float, default=0.0, help="dropout between layers / before the head")
    a("--bidirectional", action="store_true", default=False, help="bidirectional LSTM")
    a(
        "--max-time",
        type=float,
        default=d.max_time,
        metavar="SECONDS",
        help="stop cleanly after this many seconds (best model saved; --resume continues)",
    )
    a("--seed", type=int, default=d.seed, help="random seed (same seed -> same metrics on CPU)")
    a("--device", choices=["auto", "cpu", "cuda"], default=d.device, help="device (bf16 autocast on CUDA)")
    a("--resume", action="store_true", default=False, help="continue from OUT/checkpoint/ if present")
    a("--quiet", action="store_true", default=False, help="no progress output")
    parser.set_defaults(_parser=parser)
    return parser


def train_config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The :class:`TrainConfig` named by the parsed common options (others are ignored)."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if hasattr(args, f.name)}
    if hasattr(args, "monitor_mode"):  # `--monitor-mode` fills TrainConfig.mode (a task may own `--mode`)
        values["mode"] = args.monitor_mode
    return TrainConfig(**values)


# ----------------------------------------------------------------------------- --config TOML
def load_toml(path: str) -> dict[str, Any]:
    """Read a TOML file; a missing or malformed file raises LstmkitError naming it."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    p = Path(path)
    if not p.is_file():
        raise LstmkitError(f"{path}: config file not found")
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise LstmkitError(f"{path}: invalid TOML ({e})") from None


def _check_value(action: argparse.Action, value: Any, where: str) -> Any:
    kind = action.type
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        if not isinstance(value, bool):
            raise LstmkitError(f"{where}: expected true or false, got {value!r}")
        return value
    if kind is int and not (isinstance(value, int) and not isinstance(value, bool)):
        raise LstmkitError(f"{where}: expected an integer, got {value!r}")
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise LstmkitError(f"{where}: expected a number, got {value!r}")
        value = float(value)
    if action.choices is not None and value not in action.choices:
        raise LstmkitError(f"{where}: {value!r} is not one of {', '.join(map(str, action.choices))}")
    return value


def config_file_defaults(parser: argparse.ArgumentParser, path: str) -> dict[str, Any]:
    """Option defaults from a TOML file, checked against ``parser``'s options."""
    actions = {a.dest: a for a in parser._actions if a.option_strings}
    out = {}
    for key, value in load_toml(path).items():
        dest = key.replace("-", "_")
        if dest not in actions or dest in ("config", "help", "debug"):
            known = ", ".join(sorted(k for k in actions if k not in ("help", "config", "debug")))
            raise LstmkitError(f"{path}: unknown key '{key}' (keys: {known})")
        out[dest] = _check_value(actions[dest], value, f"{path}: {key}")
    return out


def apply_config_file(
    top: argparse.ArgumentParser, args: argparse.Namespace, argv: Sequence[str] | None
) -> argparse.Namespace:
    """Re-parse ``argv`` with the --config file's values as defaults (command-line flags win)."""
    path = getattr(args, "config", None)
    leaf = getattr(args, "_parser", None)
    if not path or leaf is None:
        return args
    leaf.set_defaults(**config_file_defaults(leaf, path))
    return top.parse_args(argv)


def print_json(obj: Any) -> None:
    """``evaluate --json``: exactly one JSON object on stdout (logs go to stderr); rank 0 only."""
    import json

    from lstmkit.io import to_jsonable
    from lstmkit.train.distributed import is_main_process

    if is_main_process():
        print(json.dumps(to_jsonable(obj)), flush=True)


# ----------------------------------------------------------------------------- errors
def run_guarded(fn: Callable[[], int | None], debug: bool) -> int:
    """Run ``fn``; user errors (LstmkitError, OSError) become ``error: <message>`` and exit code 2."""
    try:
        code = fn()
        return int(code or 0)
    except (LstmkitError, OSError) as e:
        if debug:
            raise
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
