"""Training checkpoints: everything needed for an exact resume, written atomically.

``out_dir/checkpoint/state.pt`` holds only tensors and plain Python values (dicts, lists, numbers,
strings), saved with ``torch.save`` and read back with ``torch.load(..., weights_only=True)``, so
loading never unpickles code. Contents: model and best weights, optimizer and scheduler state,
early-stopping state, history, the epoch / step reached, and the torch, CUDA, numpy and Python RNG
states.
"""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lstmkit.errors import LstmkitError
from lstmkit.io import atomic_write_bytes

CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "state.pt"


def checkpoint_path(out_dir: Path) -> Path:
    return Path(out_dir) / CHECKPOINT_DIR / STATE_FILE


def rng_state() -> dict[str, Any]:
    """The state of every random generator, as tensors and plain values."""
    np_state: tuple[Any, ...] = tuple(np.random.get_state())
    py_state = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "name": np_state[0],
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached": float(np_state[4]),
        },
        "python": {"version": py_state[0], "state": list(py_state[1]), "gauss": py_state[2]},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(out_dir: Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (tensors + plain values) atomically to ``out_dir/checkpoint/state.pt``."""
    buf = io.BytesIO()
    torch.save(state, buf)
    return atomic_write_bytes(checkpoint_path(out_dir), buf.getvalue())


def load_checkpoint(out_dir: Path, map_location: torch.device | None = None) -> dict[str, Any] | None:
    """The saved state, or ``None`` when there is no checkpoint. Never unpickles code."""
    path = checkpoint_path(out_dir)
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location=map_location or "cpu", weights_only=True)
    except Exception as e:  # corrupt or foreign file: one clear line
        raise LstmkitError(
            f"{path}: cannot read checkpoint ({type(e).__name__}: {e}); delete it to start afresh"
        ) from None


def cpu_state_dict(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of ``module.state_dict()``."""
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}
