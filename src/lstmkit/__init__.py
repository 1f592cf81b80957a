"""lstmkit: LSTM networks made practical.

One LSTM core (:mod:`lstmkit.nn`), one trainer (:mod:`lstmkit.train`) and six task families
(:mod:`lstmkit.tasks`). A trained model is a folder; :func:`lstmkit.load` turns it into a predictor.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "load"]


def load(folder: str | os.PathLike[str]) -> Any:
    """Load a model folder and return the task's ready predictor.

    Reads ``config.json`` and dispatches on its ``task`` to
    ``lstmkit.tasks.<task>.load_predictor(folder)``. A missing folder, a missing or corrupt
    ``config.json`` / ``model.safetensors``, an unknown task or an incompatible lstmkit version
    raise :class:`lstmkit.errors.ModelFolderError` naming the path. Never unpickles anything.
    """
    from pathlib import Path

    from lstmkit.errors import ModelFolderError
    from lstmkit.io import WEIGHTS_FILE, read_config

    config = read_config(folder)
    if not (Path(folder) / WEIGHTS_FILE).is_file():
        raise ModelFolderError(f"{Path(folder) / WEIGHTS_FILE}: model weights not found")
    task = config["task"]
    full = f"lstmkit.tasks.{task}"
    try:
        module = importlib.import_module(full) if task.isidentifier() else None
    except ModuleNotFoundError as e:
        if e.name != full:
            raise
        module = None
    if module is None or not hasattr(module, "load_predictor"):
        raise ModelFolderError(f"{Path(folder) / 'config.json'}: unknown task {task!r}")
    return module.load_predictor(folder)
