"""lstmkit's torch-free runtime: ``lstmkit.runtime.load(EXPORT_DIR)`` returns a predictor with the same
``.predict()`` as the torch predictor, computed with ONNX Runtime and NumPy.

It imports numpy, onnxruntime, the tokenizers the task needs and lstmkit's torch-free modules (the
settings, vocabularies, readers and decoders), never torch.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import Any

from lstmkit.errors import ModelFolderError
from lstmkit.io import EXPORT_FORMAT as FORMAT  # config.json's "format" in an export folder

#: task -> "module:class" of its runtime predictor
PREDICTORS = {
    "classify": "lstmkit.runtime.classify:ClassifyRuntime",
    "forecast": "lstmkit.runtime.forecast:ForecastRuntime",
    "lm": "lstmkit.runtime.lm:LMRuntime",
    "tag": "lstmkit.runtime.tag:TagRuntime",
    "translate": "lstmkit.runtime.translate:TranslateRuntime",
    "speech": "lstmkit.runtime.speech:SpeechRuntime",
}


def read_header(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The export folder's config.json, or None when ``folder`` is not an export folder."""
    path = Path(folder) / "config.json"
    try:
        header = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return header if isinstance(header, dict) and header.get("format") == FORMAT else None


def is_export(folder: str | os.PathLike[str]) -> bool:
    """True when ``folder`` holds an export (``lstmkit export``), not a model folder."""
    return read_header(folder) is not None


def load(folder: str | os.PathLike[str], threads: int | None = None) -> Any:
    """The predictor of an export folder (ONNX Runtime, no torch)."""
    header = read_header(folder)
    if header is None:
        raise ModelFolderError(f"{Path(folder) / 'config.json'}: not an lstmkit export folder (run lstmkit export)")
    task = header.get("task")
    if task not in PREDICTORS:
        raise ModelFolderError(f"{Path(folder) / 'config.json'}: unknown task {task!r}")
    module, cls = PREDICTORS[str(task)].split(":")
    return getattr(importlib.import_module(module), cls)(Path(folder), header, threads=threads)
