"""lstmkit: LSTM networks made practical.

One LSTM core (:mod:`lstmkit.nn`), one trainer (:mod:`lstmkit.trainer`) and six task families
(:mod:`lstmkit.tasks`) on one contract. The same three calls serve every task::

    import lstmkit
    result = lstmkit.train("tag", data="train.txt", valid="valid.txt", out="runs/ner", hidden_size=200)
    predictor = lstmkit.load("runs/ner")          # any model folder -> the task's predictor
    predictor.predict("EU rejects German call")   # one output per input
    lstmkit.default_config("tag")                 # every setting's default, as a dict

Importing lstmkit is cheap: torch and the tasks load on first use.
"""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lstmkit.tasks.base import Predictor
    from lstmkit.tasks.fit import FitResult

try:
    __version__ = version("lstmkit")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__", "default_config", "load", "train"]


def load(folder: str | os.PathLike[str]) -> Predictor[Any]:
    """The predictor of any model folder (the task is read from its ``config.json``).

    A missing folder, a missing or corrupt file, an unknown task or another folder format raise
    :class:`lstmkit.errors.ModelFolderError` naming the path. Never unpickles anything.
    """
    from lstmkit.tasks.base import Predictor

    return Predictor.load(folder)


def train(
    task: str,
    data: Any,
    valid: Any = None,
    out: str | os.PathLike[str] | None = None,
    *,
    test: Any = None,
    config: Any = None,
    resume: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
    callbacks: Any = (),
    **settings: Any,
) -> FitResult:
    """Train any task; the same call and keywords as ``lstmkit <task> train``.

    Args:
        task: ``forecast``, ``classify``, ``lm``, ``tag``, ``translate`` or ``speech``.
        data / valid / test: files (or in-memory data where the task takes it); without ``valid`` a
            seeded part of ``data`` is held out.
        out: the model folder to write (None: keep the model in memory only).
        config: a TOML file, a nested dict as in config.json, or the task's config object.
        settings: any setting by its flat name, e.g. ``hidden_size=256, epochs=5, lr=3e-3``.
        resume / overwrite: continue from ``out``'s checkpoint / replace a model already in ``out``.
        callbacks: extra ``(event, fn)`` trainer hooks.

    Returns:
        :class:`lstmkit.tasks.fit.FitResult`: ``predictor``, ``metrics``, ``history``, ...
    """
    from lstmkit.tasks.fit import fit, resolve_config

    cfg = resolve_config(task, config, **settings)
    return fit(
        task, cfg, data, valid, out, test=test, resume=resume, overwrite=overwrite, quiet=quiet, callbacks=callbacks
    )


def default_config(task: str) -> dict[str, Any]:
    """Every setting of ``task`` at its default, as a nested dict (the layout of config.json)."""
    from lstmkit.tasks.fit import default_config as defaults

    return defaults(task).to_dict()
