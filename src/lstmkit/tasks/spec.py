"""What a task declares about itself without importing torch: :class:`TaskSpec`.

Each task package's ``config.py`` ends with ``SPEC = TaskSpec(...)``. The command line builds
``lstmkit <task> ...`` from it alone (settings, options of evaluate / predict, extra commands), so
``lstmkit <task> --help`` never waits for torch; the Python API reads the same declarations.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from lstmkit.config import Settings


@dataclass
class NoOptions(Settings):
    """An action without options of its own."""


@dataclass(frozen=True)
class Arg:
    """A plain command-line argument that is not a setting (a file, a prompt): ``--name VALUE``."""

    name: str
    help: str
    required: bool = False
    default: str | None = None
    flag: bool = False  # an on/off switch (``--resume``): True when given, no value


@dataclass(frozen=True)
class Command:
    """An action beyond train / evaluate / predict (``forecast backtest``, ``lm generate``, ...).

    ``run`` is ``"module:function"`` called as ``function(args, options)`` with ``args`` the plain
    arguments (a dict) and ``options`` an instance of ``options``; it returns the exit code.
    """

    name: str
    help: str
    run: str
    options: type[Settings] = NoOptions
    args: tuple[Arg, ...] = ()
    model: bool = True  # takes --model DIR
    overwrite: bool = False  # takes --overwrite (replace an existing output folder), passed as args["overwrite"]
    #: run also gets args["given"] (the option flags typed, flat name -> text, to lay over a --config
    #: file as train does) and args["started"] (time.monotonic() when the command line was read)
    given: bool = False


@dataclass(frozen=True)
class TaskSpec:
    """A task family's declarations.

    Attributes:
        name: the command (``lstmkit <name>``) and ``config.json``'s ``task``.
        summary: one line for ``lstmkit --help``.
        config: the task's settings (nesting ``lstm`` and ``train`` sections).
        evaluate / predict: options of ``evaluate`` and ``predict`` (also the keyword arguments of
            ``Predictor.evaluate`` / ``Predictor.predict``).
        data_help: what ``--data`` holds for this task; valid_help: what ``--valid`` does.
        train_args / evaluate_args: extra plain arguments (translate's ``--source``/``--target``).
        commands: extra actions.
        renamed: old spellings of flags -> the new ones (answered with a one-line hint).
        inputs: ``"module:function"`` folding the extra arguments into ``(data, valid)``: called as
            ``function(data, valid, extra)`` with ``extra`` the values of ``train_args`` / ``evaluate_args``.
        description: the paragraph under ``lstmkit <name> --help``.
    """

    name: str
    summary: str
    config: type[Settings]
    evaluate: type[Settings] = NoOptions
    predict: type[Settings] = NoOptions
    data_help: str = "data file"
    valid_help: str = "validation data (default: a seeded part of --data held out)"
    predict_help: str = "inputs: a file, or - for stdin"
    train_args: tuple[Arg, ...] = ()
    evaluate_args: tuple[Arg, ...] = ()
    commands: tuple[Command, ...] = ()
    renamed: Mapping[str, str] = field(default_factory=dict)
    inputs: str | None = None
    description: str = ""
