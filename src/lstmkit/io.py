"""The model folder, and atomic file writes.

A trained model is a folder::

    config.json         {"task": ..., "lstmkit_version": ..., "transforms": [names], ...task config}
    model.safetensors   the state dict (tensors only: loading never unpickles)
    <name>.json         one file per data transform (vocabulary, scaler, label list, ...)
    metrics.json        final validation / test metrics
    history.csv, *.png  written by the trainer and the task (not read back here)

Every file is written atomically: to a temporary file in the same folder, flushed, then renamed
over the target, so a crash never leaves a half-written file behind.
"""

from __future__ import annotations

import dataclasses
import enum
import json
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
RESERVED_KEYS = ("task", "lstmkit_version", "transforms")


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
    """Write ``obj`` as indented JSON atomically (dataclasses, enums and paths are converted)."""
    return atomic_write_text(path, json.dumps(to_jsonable(obj), indent=2, sort_keys=False) + "\n")


def to_jsonable(obj: Any) -> Any:
    """Convert dataclasses, enums, paths, tuples, numpy/torch scalars into plain JSON values."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, enum.Enum):
        return to_jsonable(obj.value)
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "shape", None) == ():
        return obj.item()  # numpy scalar
    return obj


# --------------------------------------------------------------------------- model folder
@dataclass
class ModelFolder:
    """What :func:`read_folder` returns."""

    path: Path
    config: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    transforms: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] | None = None

    @property
    def task(self) -> str:
        return self.config["task"]

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


def _is_main_process() -> bool:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank() == 0
    return int(os.environ.get("RANK", "0")) == 0


def _state_dict_for_saving(model: nn.Module | Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """CPU, contiguous, storage-unshared copies (safetensors refuses tied/shared tensors)."""
    if isinstance(model, nn.Module):
        model = getattr(model, "module", model)  # unwrap DistributedDataParallel
        state = model.state_dict()
    else:
        state = dict(model)
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}


def save_model(
    folder: PathLike,
    task: str,
    config: Any,
    model: nn.Module | Mapping[str, torch.Tensor],
    transforms: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
) -> Path:
    """Write a model folder (see module doc). Under torchrun only rank 0 writes.

    Args:
        folder: the model folder (created if missing).
        task: the task name; :func:`lstmkit.load` dispatches on it.
        config: the task's config dataclass (or a dict); saved in config.json with ``task``,
            ``lstmkit_version`` and ``transforms`` (the names of the transform files).
        model: the trained module (or a state dict).
        transforms: name -> JSON-able object, one ``<name>.json`` each.
        metrics: final metrics, saved in metrics.json.
    """
    from safetensors.torch import save as st_save

    folder = Path(folder)
    if not _is_main_process():
        return folder
    transforms = dict(transforms or {})
    cfg = to_jsonable(config)
    if not isinstance(cfg, dict):
        raise TypeError(f"config must be a dataclass or a dict, got {type(config).__name__}")
    clash = [k for k in RESERVED_KEYS if k in cfg]
    if clash:
        raise ValueError(f"config may not use the reserved key(s) {clash}")
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
    head = {"task": task, "lstmkit_version": __version__, "transforms": sorted(transforms)}
    atomic_write_json(folder / CONFIG_FILE, {**head, **cfg})
    return folder


def _read_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise ModelFolderError(f"{path}: {what} not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelFolderError(f"{path}: corrupt JSON ({e})") from None


def _version_compatible(saved: str) -> bool:
    """Same major version (same minor while the major version is 0)."""
    try:
        s = [int(p) for p in str(saved).split(".")[:2]]
        c = [int(p) for p in __version__.split(".")[:2]]
    except ValueError:
        return False
    return s[0] == c[0] and (c[0] != 0 or s[1] == c[1])


def read_config(folder: PathLike) -> dict[str, Any]:
    """Read and check ``config.json`` (folder exists, task and compatible version present)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelFolderError(f"{folder}: model folder not found")
    config = _read_json(folder / CONFIG_FILE, "config.json")
    if not isinstance(config, dict) or not isinstance(config.get("task"), str):
        raise ModelFolderError(f"{folder / CONFIG_FILE}: field 'task' missing")
    version = config.get("lstmkit_version")
    if version is None or not _version_compatible(version):
        raise ModelFolderError(
            f"{folder / CONFIG_FILE}: saved by lstmkit {version}, incompatible with this lstmkit {__version__}"
        )
    return config


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
    config = read_config(folder)
    state = read_weights(folder)
    transforms = {
        name: _read_json(folder / f"{name}.json", f"transform '{name}'") for name in config.get("transforms", [])
    }
    metrics_path = folder / METRICS_FILE
    metrics = _read_json(metrics_path, "metrics.json") if metrics_path.exists() else None
    return ModelFolder(path=folder, config=config, state_dict=state, transforms=transforms, metrics=metrics)


def task_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config.json`` without the keys :func:`save_model` adds (task, version, transforms)."""
    return {k: v for k, v in config.items() if k not in RESERVED_KEYS}
