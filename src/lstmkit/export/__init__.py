"""``lstmkit export``: a model folder as ONNX graphs plus the JSON its predictor needs, for
:mod:`lstmkit.runtime` (ONNX Runtime and NumPy, no torch).

An export folder::

    config.json       {"format": "lstmkit-export", "format_version": 1, "task": ..., "config": {...},
                       "dims": {...}, "transforms": [...], "graphs": {name: {"file", "inputs", "outputs"}},
                       "extras": {...task arrays as JSON...}, "quantize": null | "int8", "opset": 17}
    <graph>.onnx      the task's graphs (``lstmkit.tasks.<task>.export.graphs``): whole sequences with
                      dynamic batch and time axes, step graphs with the LSTM state as inputs and outputs
    <name>.json       the model folder's transforms (vocabularies, scalers, labels), unchanged
    metrics.json      the model folder's metrics, when it has them

Each task says what it exports in ``lstmkit/tasks/<task>/export.py``: ``graphs(predictor)`` (a list of
:class:`GraphSpec`) and optionally ``extras(predictor)`` (JSON-able arrays such as CRF transitions).
The folder is written beside its destination and renamed into place whole.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lstmkit.errors import LstmkitError

if TYPE_CHECKING:
    from torch import Tensor, nn

FORMAT_VERSION = 1


@dataclass
class GraphSpec:
    """One graph to export: ``module(*args)`` traced with these input and output names; ``dynamic``
    names the axes that vary (``{"x": {0: "B", 1: "T"}}``)."""

    name: str
    module: nn.Module
    args: tuple[Tensor, ...]
    inputs: list[str]
    outputs: list[str]
    dynamic: dict[str, dict[int, str]]


def task_hooks(task: str) -> Any:
    """The task's ``export`` module (``graphs`` and optionally ``extras``)."""
    try:
        return importlib.import_module(f"lstmkit.tasks.{task}.export")
    except ModuleNotFoundError:
        raise LstmkitError(f"lstmkit export: {task} models cannot be exported yet") from None


def export_model(
    model: str | os.PathLike[str] | Any,
    out: str | os.PathLike[str],
    quantize: str | None = None,
    mode: str = "auto",
    overwrite: bool = False,
    check_data: Any = None,
) -> Path:
    """Export a model folder (or a loaded predictor) to the export folder ``out``; returns ``out``.

    ``check_data``: labelled data (what the task's ``evaluate`` takes); the export is evaluated on it
    beside the torch model and both sets of metrics are saved as ``check.json`` (with ``--quantize int8``
    this is the accuracy change the quantization costs)."""
    from lstmkit import load
    from lstmkit.io import atomic_write_json, clear_staging, commit_folder, staging_dir

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise LstmkitError(f"{out} exists and is not a folder")
    if out.exists() and not overwrite:
        raise LstmkitError(f"{out} exists: pass --overwrite to replace it")
    predictor = load(model) if isinstance(model, (str, os.PathLike)) else model
    hooks = task_hooks(predictor.task)
    clear_staging(out)
    stage = staging_dir(out)
    stage.mkdir(parents=True)
    graphs = write_graphs(stage, hooks.graphs(predictor), quantize, mode)
    extras = hooks.extras(predictor) if hasattr(hooks, "extras") else {}
    write_folder_files(stage, predictor, header(predictor, graphs, extras, quantize))
    if check_data is not None:
        atomic_write_json(stage / "check.json", compare(predictor, stage, check_data))
    return commit_folder(stage, out)


def write_graphs(stage: Path, specs: list[GraphSpec], quantize: str | None, mode: str) -> dict[str, Any]:
    """Each graph as ``<name>.onnx`` in ``stage`` (quantized in place with int8); their header entries."""
    import onnx

    from lstmkit.export.trace import to_onnx

    graphs = {}
    for g in specs:
        proto = to_onnx(g.module, g.args, g.inputs, g.outputs, g.dynamic, mode=mode)  # type: ignore[arg-type]
        onnx.save(proto, stage / f"{g.name}.onnx")
        if quantize == "int8":
            _quantize(stage / f"{g.name}.onnx")
        graphs[g.name] = {"file": f"{g.name}.onnx", "inputs": g.inputs, "outputs": g.outputs}
    return graphs


def header(predictor: Any, graphs: dict[str, Any], extras: dict[str, Any], quantize: str | None) -> dict[str, Any]:
    """The export folder's config.json (module docstring)."""
    from lstmkit import __version__
    from lstmkit.export.graph import OPSET
    from lstmkit.io import to_jsonable
    from lstmkit.runtime import FORMAT

    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "task": predictor.task,
        "lstmkit_version": __version__,
        "config": predictor.config.to_dict(),
        "dims": to_jsonable(predictor.dims),
        "transforms": sorted(predictor.transforms),
        "graphs": graphs,
        "extras": to_jsonable(extras),
        "quantize": quantize,
        "opset": OPSET,
    }


def write_folder_files(stage: Path, predictor: Any, head: dict[str, Any]) -> None:
    """The transforms (one JSON each, as in the model folder), metrics.json and config.json."""
    from lstmkit.io import atomic_write_json, atomic_write_text, dumps_json

    for name, obj in predictor.transforms.items():
        atomic_write_text(stage / f"{name}.json", dumps_json(obj) + "\n")
    if predictor.metrics:
        atomic_write_json(stage / "metrics.json", predictor.metrics)
    atomic_write_json(stage / "config.json", head)


def compare(predictor: Any, folder: Path, data: Any) -> dict[str, Any]:
    """``{"torch": metrics, "onnx": metrics, "change": onnx - torch per number}`` of ``evaluate(data)``."""
    from lstmkit.runtime import load as load_runtime

    ref, got = predictor.evaluate(data), load_runtime(folder).evaluate(data)
    change = {
        k: got[k] - v for k, v in ref.items() if isinstance(v, (int, float)) and isinstance(got.get(k), (int, float))
    }
    return {"torch": ref, "onnx": got, "change": change}


def _quantize(path: Path) -> None:
    """Dynamic int8 quantization of the weights of ``path`` in place (onnxruntime.quantization)."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = path.with_suffix(".int8.onnx")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # its advice to pre-process with shape inference is not for our graphs
    try:
        quantize_dynamic(str(path), str(tmp), weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)
    os.replace(tmp, path)
