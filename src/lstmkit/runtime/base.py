"""The runtime predictor: the torch predictor's contract (:class:`lstmkit.tasks.base.Predictor`'s
``predict``, ``evaluate``, ``items``, ``format_outputs``) over an export folder's ONNX graphs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from lstmkit.errors import ModelFolderError
from lstmkit.tasks.base import Predictor


class Graph:
    """One ONNX graph on ONNX Runtime's CPU provider: ``graph(x=..., lengths=...) -> list of outputs``
    in the order of the export's ``outputs``."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3  # ORT's shape-merge warnings are not the user's business
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # a truncated or foreign file: ORT's own message, one line
            raise ModelFolderError(f"{path}: not a loadable ONNX graph ({str(e).splitlines()[0]})") from None
        self.inputs = [i.name for i in self.session.get_inputs()]

    def __call__(self, **feeds: np.ndarray) -> list[np.ndarray]:
        return self.session.run(None, {k: v for k, v in feeds.items() if k in self.inputs})


class RuntimePredictor(Predictor[Any]):
    """A task predictor whose network is the export folder's graphs (``self.graphs[name]``).

    Built from the folder's config.json (the model's settings, ``dims``, transforms and ``extras``);
    subclasses set ``spec`` (the task's torch-free declaration) and implement ``setup`` and
    ``predict_items`` (and ``read`` / ``format_outputs`` where the task's differ from the default).
    """

    runtime = "onnx"

    def __init__(self, folder: Path, header: dict[str, Any], threads: int | None = None) -> None:
        self.path = folder
        self.header = header
        where = str(folder / "config.json")
        try:
            self.config = self.spec.config.from_dict(header["config"], source=where)
            self.dims = dict(header["dims"])
            self.extras = dict(header.get("extras") or {})
            self.transforms = {n: _read_json(folder / f"{n}.json") for n in header.get("transforms", [])}
            self.graphs = {n: Graph(folder / g["file"], threads) for n, g in header["graphs"].items()}
        except (KeyError, TypeError, AttributeError) as e:
            raise ModelFolderError(f"{where}: malformed export header ({type(e).__name__}: {e})") from None
        metrics = folder / "metrics.json"
        self.metrics = _read_json(metrics) if metrics.is_file() else None
        self.setup()

    def save(self, folder: Any, metrics: Any = None) -> Path:
        raise ModelFolderError(f"{self.path}: an export folder is read-only (save the model folder instead)")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFolderError(f"{path}: missing from the export folder") from None
    except (OSError, ValueError) as e:
        raise ModelFolderError(f"{path}: unreadable ({e})") from None
