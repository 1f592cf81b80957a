"""The model behind ``lstmkit serve``: a model folder (torch) or an ``lstmkit export`` folder (ONNX)."""

from __future__ import annotations

import os
from typing import Any

from lstmkit.runtime import is_export


def runtime_name(path: str | os.PathLike[str]) -> str:
    """``"onnx"`` for an export folder, ``"torch"`` for a model folder."""
    return "onnx" if is_export(path) else "torch"


def load_any(path: str | os.PathLike[str], threads: int | None = None) -> Any:
    """The predictor of a model folder (:func:`lstmkit.load`) or of an export folder
    (:func:`lstmkit.runtime.load`, torch-free); both answer ``.predict(inputs, **options)``.

    A missing or broken folder raises :class:`~lstmkit.errors.ModelFolderError` naming it.
    """
    if is_export(path):
        from lstmkit.runtime import load

        return load(path, threads=threads)
    import lstmkit

    return lstmkit.load(path)
