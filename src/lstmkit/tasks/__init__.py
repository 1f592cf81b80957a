"""The six task families, each a package ``lstmkit.tasks.<name>`` implementing one contract.

Every package holds ``config.py`` (its settings and ``SPEC``, torch-free), ``task.py`` (``TASK``: the
:class:`lstmkit.tasks.base.Task` subclass: prepare, build, loss, metrics), ``predict.py`` (its
:class:`lstmkit.tasks.base.Predictor`) and whatever else it needs (``data.py``, ``model.py``, ...).
A task never imports another task; what they share lives in ``lstmkit.tasks.base`` /
``settings`` / ``spec`` and in ``lstmkit.data``, ``lstmkit.trainer``, ``lstmkit.io``.

This module only names the tasks (no torch), so ``lstmkit --help`` stays instant.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from lstmkit.errors import LstmkitError

if TYPE_CHECKING:
    from lstmkit.tasks.base import Task
    from lstmkit.tasks.spec import TaskSpec

#: task name -> one line for ``lstmkit --help`` (the order of the help and the README)
TASKS: dict[str, str] = {
    "forecast": "time-series forecasting (train, evaluate, predict, backtest)",
    "classify": "text and sequence classification (sentiment, topics, ...)",
    "lm": "word- and character-level language models, with generation",
    "tag": "sequence labelling with a BiLSTM-CRF (NER, POS)",
    "translate": "machine translation: LSTM encoder-decoder with attention",
    "speech": "speech recognition: MFCC / log-mel, (Bi)LSTM, softmax or CTC",
}


def check_name(name: str) -> str:
    """``name`` if it is a task, else a one-line error listing the tasks."""
    if name not in TASKS:
        raise LstmkitError(f"unknown task {name!r} (tasks: {', '.join(TASKS)})")
    return name


def get_spec(name: str) -> TaskSpec:
    """The task's declarations (imports only its ``config`` module: no torch)."""
    module = importlib.import_module(f"lstmkit.tasks.{check_name(name)}.config")
    return module.SPEC


def task_class(name: str) -> type[Task]:
    """The task's :class:`~lstmkit.tasks.base.Task` subclass (imports torch and the task)."""
    module = importlib.import_module(f"lstmkit.tasks.{check_name(name)}.task")
    return module.TASK
