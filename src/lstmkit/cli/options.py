"""Command-line flags derived from settings declarations, and the parser every command uses.

:func:`add_settings` turns each leaf of a :class:`lstmkit.config.Settings` tree into one flag: its
name (``hidden_size`` -> ``--hidden-size``), its help with the default and the valid range, grouped
by section. Flags default to "not given", so :func:`given_settings` returns exactly what the user
typed; the values are parsed and checked by the settings class itself, so the command line, a
TOML file and Python keywords get the same messages.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import Any, NoReturn, get_args, get_origin

from lstmkit.config import Leaf, Settings
from lstmkit.config_values import show, type_text

#: argument names that are not settings; a task's setting may not take one of these names
RESERVED = {
    "data",
    "valid",
    "test",
    "out",
    "config",
    "dry_run",
    "resume",
    "overwrite",
    "threads",
    "quiet",
    "json",
    "debug",
    "model",
    "output",
    "help",
    "version",
}


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions keep their line breaks; options get a wider column."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=34, width=110)


class LstmkitParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (``error: ...``, exit 2) and which has ``--debug``.

    ``hints`` maps old spellings of flags to the new ones; an unknown flag found there is answered
    with the new spelling. Sub-parsers from ``add_subparsers`` are of this class too.
    """

    def __init__(self, *args: Any, hints: Mapping[str, str] | None = None, **kwargs: Any):
        kwargs.setdefault("formatter_class", HelpFormatter)
        kwargs.setdefault("allow_abbrev", False)  # a prefix of a flag is not that flag (renamed flags get hints)
        super().__init__(*args, **kwargs)
        self.hints: dict[str, str] = dict(hints or {})
        # SUPPRESS: an unset --debug of a sub-command never overwrites a parent's value
        self.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help="show the full traceback on errors"
        )

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments:"):
            for word in message.split(":", 1)[1].split():
                old = word.split("=", 1)[0]
                if old in self.hints:
                    message = f"{old} is now {self.hints[old]} (see {self.prog} --help)"
                    break
        print(f"error: {self.prog}: {message}", file=sys.stderr)
        raise SystemExit(2)


def _metavar(leaf: Leaf) -> str:
    if leaf.spec.metavar:
        return leaf.spec.metavar
    return type_text(leaf.type)


def _help(leaf: Leaf, default: Any) -> str:
    text = leaf.spec.help + (f"; {leaf.note}" if leaf.note else "")
    bounds = leaf.spec.bounds()
    if bounds:
        text += f" [{bounds}]"
    shown = default if isinstance(default, str) else show(default)
    if "(none:" in text or "(default" in text:  # the help explains its default itself
        return text.replace("%", "%%")
    return f"{text} (default: {shown})".replace("%", "%%")


def _is_bool(tp: Any) -> bool:
    return tp is bool or (get_origin(tp) is not None and bool in get_args(tp) and len(get_args(tp)) == 1)


def add_settings(parser: argparse.ArgumentParser, defaults: Settings, title: str = "") -> None:
    """One flag per setting of ``defaults``'s tree, grouped by section, showing ``defaults``' values."""
    groups: dict[type, Any] = {}
    values = defaults.flat()
    for leaf in defaults.leaves():
        if leaf.fixed or not leaf.spec.cli:
            continue
        if leaf.name in RESERVED:
            raise TypeError(f"{type(defaults).__name__}.{leaf.name}: the name is taken by the command line")
        if leaf.owner not in groups:
            heading = getattr(leaf.owner, "title", "") or title or "settings"
            groups[leaf.owner] = parser.add_argument_group(f"{heading} settings")
        flag = "--" + leaf.name.replace("_", "-")
        kw: dict[str, Any] = {"dest": leaf.name, "default": argparse.SUPPRESS, "help": _help(leaf, values[leaf.name])}
        if leaf.type is bool:
            kw["action"] = argparse.BooleanOptionalAction
        else:
            kw["metavar"] = _metavar(leaf)
        groups[leaf.owner].add_argument(flag, **kw)


def given_settings(args: argparse.Namespace, cls: type[Settings]) -> dict[str, Any]:
    """The settings typed on the command line (flat names -> raw values; strings are parsed by
    :meth:`Settings.build` with ``text=True``)."""
    names = {leaf.name for leaf in cls.leaves()}
    return {k: v for k, v in vars(args).items() if k in names}
