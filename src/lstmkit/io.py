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
    tensorboard/        event files of ``--log-to tensorboard`` (:mod:`lstmkit.trainer.tracking`)

Every file is written atomically: to a temporary file in the same folder, flushed, then renamed
over the target, so a crash never leaves a half-written file behind. JSON never holds NaN or
Infinity (they are written as null): every file and every ``--json`` output is valid JSON.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from lstmkit import __version__
from lstmkit.errors import LstmkitError, ModelFolderError

if TYPE_CHECKING:  # torch is imported where weights are read or written: the runtime reads JSON only
    import torch
    from torch import nn

PathLike = Union[str, "os.PathLike[str]"]

CONFIG_FILE = "config.json"
EXPORT_FORMAT = "lstmkit-export"  # config.json's "format" in an export folder (lstmkit export writes it)
WEIGHTS_FILE = "model.safetensors"
METRICS_FILE = "metrics.json"
FORMAT_VERSION = 2


# --------------------------------------------------------------------------- atomic writes
_UMASK: list[int] = []


def file_mode() -> int:
    """The mode a new file gets under this process's umask (``0o666 & ~umask``), read once."""
    if not _UMASK:
        mask = os.umask(0)
        os.umask(mask)
        _UMASK.append(mask)
    return 0o666 & ~_UMASK[0]


def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, fsync, rename); the file
    gets the mode the umask gives new files (``mkstemp`` alone would make it 0600)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, file_mode())
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


def check_writable(path: PathLike | None, flag: str = "--output") -> None:
    """Refuse an output file before any work: a folder in its place, a file where one of its folders
    should be, or a folder that cannot be written (``-`` and None: nothing to check)."""
    if path is None or str(path) == "-":
        return
    p = Path(path)
    if p.is_dir():
        raise LstmkitError(f"{flag} {p}: is a folder, not a file")
    probe = p.parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise LstmkitError(f"{flag} {p}: {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise LstmkitError(f"{flag} {p}: {probe} is not writable")


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
        return _frame_records(obj)
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "tolist") and callable(obj.tolist):  # numpy arrays and scalars, torch tensors
        return to_jsonable(obj.tolist())
    return obj


NUMPY_FLOATS = ("float16", "float32", "float64")  # not pandas' nullable Float32/Float64 (pd.NA)


def _frame_records(df: Any) -> list[dict[str, Any]]:
    """A DataFrame as a list of row records, converted a column at a time (what
    ``to_jsonable(df.to_dict(orient="records"))`` gives, several times faster for small frames)."""
    names = [str(c) for c in df.columns]
    if not names or len(set(names)) < len(names):  # no column, or duplicated names (to_dict decides)
        return [to_jsonable(row) for row in df.to_dict(orient="records")]
    columns = []
    for _, col in df.items():
        values = col.tolist()  # Python floats, ints, strings, Timestamps
        if str(col.dtype) in NUMPY_FLOATS:  # NaN -> None, nothing else to do
            columns.append([v if math.isfinite(v) else None for v in values])
        else:
            columns.append([None if type(v).__name__ == "NAType" else to_jsonable(v) for v in values])  # pd.NA
    return [dict(zip(names, row)) for row in zip(*columns)]


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
        own = module.state_dict()
        for name, t in self.state_dict.items():
            if name in own and own[name].dtype != t.dtype:
                raise ModelFolderError(
                    f"{self.path}/model.safetensors: tensor '{name}' is {t.dtype}, the model needs {own[name].dtype}"
                )
        try:
            module.load_state_dict(self.state_dict)
        except RuntimeError as e:
            raise ModelFolderError(
                f"{self.path}/model.safetensors: does not match config.json ({str(e).splitlines()[0][:200]})"
            ) from None
        return module.eval()


def _state_dict_for_saving(model: nn.Module | Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """CPU, contiguous, storage-unshared copies (safetensors refuses tied/shared tensors)."""
    from torch import nn

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
    weights = st_save(_state_dict_for_saving(model))
    atomic_write_bytes(folder / WEIGHTS_FILE, weights)
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
        "weights": {"sha256": hashlib.sha256(weights).hexdigest(), "bytes": len(weights)},
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
    if header.get("format") == EXPORT_FORMAT:
        raise ModelFolderError(
            f"{folder}: an export folder (ONNX graphs for predict, evaluate and serve); this needs the model "
            "folder it was exported from (config.json + model.safetensors)"
        )
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


def read_weights(folder: PathLike, expect: Mapping[str, Any] | None = None) -> dict[str, torch.Tensor]:
    """Read ``model.safetensors`` (never unpickles): its bytes must match ``expect`` (config.json's
    ``weights``: sha256 and size) when given, and every floating-point tensor must be finite."""
    from safetensors import SafetensorError
    from safetensors.torch import load as st_load

    path = Path(folder) / WEIGHTS_FILE
    if not path.is_file():
        raise ModelFolderError(f"{path}: model weights not found")
    raw = path.read_bytes()
    if expect is not None and (
        len(raw) != expect.get("bytes") or hashlib.sha256(raw).hexdigest() != expect.get("sha256")
    ):
        raise ModelFolderError(
            f"{path}: does not match the checksum in config.json ({len(raw)} bytes; the file was changed, truncated "
            "or belongs to another model)"
        )
    try:
        state = st_load(raw)
    except (SafetensorError, ValueError, OSError) as e:
        raise ModelFolderError(f"{path}: corrupt safetensors file ({e})") from None
    for name, t in state.items():
        if t.is_floating_point() and not bool(t.isfinite().all()):
            raise ModelFolderError(f"{path}: tensor '{name}' holds NaN or infinite values")
    return state


def read_folder(folder: PathLike) -> ModelFolder:
    """Read a whole model folder; any missing or corrupt file raises :class:`ModelFolderError`."""
    folder = Path(folder)
    header = read_config(folder)
    state = read_weights(folder, header.get("weights"))
    for name in header["transforms"]:
        if not isinstance(name, str) or not name or "/" in name or "\\" in name or name.startswith("."):
            raise ModelFolderError(f"{folder / CONFIG_FILE}: bad transform name {name!r}")
    transforms = {name: _read_json(folder / f"{name}.json", f"transform '{name}'") for name in header["transforms"]}
    metrics_path = folder / METRICS_FILE
    metrics = _read_json(metrics_path, "metrics.json") if metrics_path.exists() else None
    return ModelFolder(path=folder, header=header, state_dict=state, transforms=transforms, metrics=metrics)


# --------------------------------------------------------------------------- whole-folder writes
def staging_dir(out: PathLike) -> Path:
    """The hidden sibling ``.<name>.partial`` where a run into ``out`` builds its folder (checkpoints
    included, so that ``--resume`` finds them after a kill)."""
    out = Path(out)
    return out.parent / f".{out.name}.partial"


def swap_dir(out: PathLike) -> Path:
    """The hidden sibling ``.<name>.swap`` a finished folder passes through on its way to ``out``."""
    out = Path(out)
    return out.parent / f".{out.name}.swap"


def clear_staging(out: PathLike) -> None:
    """Remove what an earlier, unfinished run into ``out`` left beside it."""
    import shutil

    for p in (staging_dir(out), swap_dir(out)):
        shutil.rmtree(p, ignore_errors=True)


def commit_folder(stage: PathLike, out: PathLike) -> Path:
    """Make the complete folder ``stage`` the folder ``out``.

    ``out`` is replaced in one step (Linux ``renameat2(RENAME_EXCHANGE)``; elsewhere two renames a
    moment apart), so at every instant — a kill -9 included — ``out`` is either the previous folder,
    whole, or the new one, whole. The previous folder is removed afterwards.
    """
    import shutil

    stage, out = Path(stage), Path(out)
    swap = swap_dir(out)
    shutil.rmtree(swap, ignore_errors=True)
    os.rename(stage, swap)
    if not out.exists():
        os.rename(swap, out)
        return out
    if not _exchange(swap, out):
        old = out.parent / f".{out.name}.old"
        shutil.rmtree(old, ignore_errors=True)
        os.rename(out, old)
        os.rename(swap, out)
        swap = old
    shutil.rmtree(swap, ignore_errors=True)  # now the previous folder
    return out


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux >= 3.15, glibc >= 2.28); False where that is not possible."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    ok = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0
    return ok
