"""The model folder, and atomic file writes.

A trained model is a folder (format 2)::

    config.json         {"task": "tag", "format_version": 2, "lstmkit_version": "0.2.0",
                         "config": {...the task's full nested settings...},
                         "dims": {...sizes derived from the data: vocabulary, classes, channels...},
                         "transforms": ["chars", "tags", "words"]}
    model.safetensors   the state dict (tensors only: loading never unpickles)
    <name>.json         one file per data transform (vocabulary, scaler, label list, ...)
    metrics.json        final validation / test metrics
    history.csv, *.png  written by the trainer and the task (not read back here)

Every file is written atomically: to a temporary file in the same folder, flushed, then renamed
over the target, so a crash never leaves a half-written file behind. JSON never holds NaN or
Infinity (they are written as null): every file and every ``--json`` output is valid JSON.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import torch
from torch import nn

from lstmkit import __version__
from lstmkit.errors import ModelFolderError

PathLike = Union[str, "os.PathLike[str]"]

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
METRICS_FILE = "metrics.json"
FORMAT_VERSION = 2


# --------------------------------------------------------------------------- atomic writes
def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically (see :func:`dumps_json`)."""
    return atomic_write_text(path, dumps_json(obj, indent=2) + "\n")


def dumps_json(obj: Any, indent: int | None = None) -> str:
    """Strict JSON text of ``obj`` after :func:`to_jsonable`: NaN and ±Infinity become ``null``."""
    return json.dumps(to_jsonable(obj), indent=indent, allow_nan=False, ensure_ascii=False)


def to_jsonable(obj: Any) -> Any:
    """Convert dataclasses, NamedTuples, enums, paths, dates and times (ISO text), tuples, numpy/torch
    values and pandas DataFrames (a list of row records) into plain JSON values; non-finite floats
    become ``None``."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple) and hasattr(obj, "_asdict"):  # NamedTuple
        return to_jsonable(obj._asdict())
    if isinstance(obj, enum.Enum):
        return to_jsonable(obj.value)
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (datetime.date, datetime.time)):  # pandas Timestamps too
        return obj.isoformat()
    if hasattr(obj, "to_dict") and hasattr(obj, "columns") and hasattr(obj, "iloc"):  # a pandas DataFrame
        return [to_jsonable(row) for row in obj.to_dict(orient="records")]
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "tolist") and callable(obj.tolist):  # numpy arrays and scalars, torch tensors
        return to_jsonable(obj.tolist())
    return obj


# --------------------------------------------------------------------------- model folder
@dataclass
class ModelFolder:
    """What :func:`read_folder` returns: ``header`` is the whole config.json."""

    path: Path
    header: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    transforms: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] | None = None

    @property
    def task(self) -> str:
        return self.header["task"]

    @property
    def config(self) -> dict[str, Any]:
        """The task's nested settings (config.json's ``config``)."""
        return self.header["config"]

    @property
    def dims(self) -> dict[str, Any]:
        """Sizes derived from the training data (config.json's ``dims``)."""
        return self.header["dims"]

    def load_into(self, module: nn.Module) -> nn.Module:
        """Load the folder's weights into ``module`` (built from config.json); a mismatch raises
        :class:`ModelFolderError` naming the file. Returns ``module`` in eval mode."""
        try:
            module.load_state_dict(self.state_dict)
        except RuntimeError as e:
            raise ModelFolderError(
                f"{self.path}/model.safetensors: does not match config.json ({str(e).splitlines()[0][:200]})"
            ) from None
        return module.eval()


def _state_dict_for_saving(model: nn.Module | Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """CPU, contiguous, storage-unshared copies (safetensors refuses tied/shared tensors)."""
    if isinstance(model, nn.Module):
        from lstmkit.trainer.distributed import unwrap

        state = unwrap(model).state_dict()
    else:
        state = dict(model)
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}


def save_model(
    folder: PathLike,
    task: str,
    config: Any,
    model: nn.Module | Mapping[str, torch.Tensor],
    *,
    dims: Mapping[str, Any] | None = None,
    transforms: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
) -> Path:
    """Write a model folder (see the module doc). Under torchrun only rank 0 writes.

    Args:
        folder: the model folder (created if missing).
        task: the task name; :func:`lstmkit.load` dispatches on it.
        config: the task's settings (a :class:`lstmkit.config.Settings` or its ``to_dict()``).
        model: the trained module (or a state dict).
        dims: sizes derived from the data that, with ``config``, rebuild the network.
        transforms: name -> JSON-able object, one ``<name>.json`` each.
        metrics: final metrics, saved in metrics.json.
    """
    from safetensors.torch import save as st_save

    from lstmkit.trainer.distributed import is_main_process

    folder = Path(folder)
    if not is_main_process():
        return folder
    transforms = dict(transforms or {})
    settings = config.to_dict() if hasattr(config, "to_dict") else to_jsonable(config)
    if not isinstance(settings, dict):
        raise TypeError(f"config must be Settings or a dict, got {type(config).__name__}")
    for name in transforms:
        if name in ("config", "metrics") or "/" in name or not name:
            raise ValueError(f"bad transform name {name!r}")
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / WEIGHTS_FILE, st_save(_state_dict_for_saving(model)))
    for name, obj in transforms.items():
        atomic_write_json(folder / f"{name}.json", obj)
    if metrics is not None:
        atomic_write_json(folder / METRICS_FILE, metrics)
    # config.json last: its presence marks a complete folder.
    header = {
        "task": task,
        "format_version": FORMAT_VERSION,
        "lstmkit_version": __version__,
        "config": settings,
        "dims": dict(dims or {}),
        "transforms": sorted(transforms),
    }
    atomic_write_json(folder / CONFIG_FILE, header)
    return folder


def _read_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise ModelFolderError(f"{path}: {what} not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelFolderError(f"{path}: corrupt JSON ({e})") from None


def read_config(folder: PathLike) -> dict[str, Any]:
    """Read and check ``config.json``: the folder exists, ``task`` is named, the format is this one's."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelFolderError(f"{folder}: model folder not found")
    path = folder / CONFIG_FILE
    header = _read_json(path, "config.json")
    if not isinstance(header, dict) or not isinstance(header.get("task"), str):
        raise ModelFolderError(f"{path}: field 'task' missing")
    version = header.get("format_version", 1)
    if version != FORMAT_VERSION:
        raise ModelFolderError(
            f"{path}: model folder format {version} (lstmkit {header.get('lstmkit_version', '?')}); this lstmkit "
            f"{__version__} reads format {FORMAT_VERSION}: train the model again"
        )
    for key, kind in (("config", dict), ("dims", dict), ("transforms", list)):
        if not isinstance(header.get(key), kind):
            raise ModelFolderError(f"{path}: field '{key}' missing or not a {kind.__name__}")
    return header


def read_weights(folder: PathLike) -> dict[str, torch.Tensor]:
    """Read ``model.safetensors`` (never unpickles)."""
    from safetensors import SafetensorError
    from safetensors.torch import load as st_load

    path = Path(folder) / WEIGHTS_FILE
    if not path.is_file():
        raise ModelFolderError(f"{path}: model weights not found")
    try:
        return st_load(path.read_bytes())
    except (SafetensorError, ValueError, OSError) as e:
        raise ModelFolderError(f"{path}: corrupt safetensors file ({e})") from None


def read_folder(folder: PathLike) -> ModelFolder:
    """Read a whole model folder; any missing or corrupt file raises :class:`ModelFolderError`."""
    folder = Path(folder)
    header = read_config(folder)
    state = read_weights(folder)
    transforms = {name: _read_json(folder / f"{name}.json", f"transform '{name}'") for name in header["transforms"]}
    metrics_path = folder / METRICS_FILE
    metrics = _read_json(metrics_path, "metrics.json") if metrics_path.exists() else None
    return ModelFolder(path=folder, header=header, state_dict=state, transforms=transforms, metrics=metrics)
