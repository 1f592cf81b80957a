"""The compiled path: the fused recurrence with each step's elementwise work in C++ (CPU).

:mod:`lstmkit.nn.fused` runs a layer-direction as one autograd Function whose per-step work is a
dozen tensor ops; on a CPU with small batches those ops, not the two matrix products, dominate (each
op is one pass over memory plus dispatch). ``csrc/lstm_cpu.cpp`` does the same arithmetic with one
pass per row and step (gates, the three layer norms, peepholes, zoneout, padding), leaving the
matrix products to ATen's GEMM, as haste does on GPUs. A whole layer is one autograd Function
(:class:`CompiledLayer`): one input GEMM for all directions, the reverse direction run backwards in
time inside the kernel (no flipped copies, no concatenation of the outputs), zoneout masks hashed
where they are used (:class:`~lstmkit.nn.dropout.ZoneoutDraw`) instead of read from memory.

It is compiled on first use with ``torch.utils.cpp_extension`` (about a minute) and the fused Python
path is used whenever it cannot be: no compiler, a CUDA tensor, a projection, bf16/fp16, double
backward, or ``LSTMKIT_COMPILED=0`` in the environment.

The build is cached once per user, shared by every checkout and virtual environment: its folder
``<torch extensions dir>/lstmkit_cpu_<isa>_<key>`` is named by a hash of what makes the binary
(the sources' contents, compiler and flags, instruction set, torch version, Python ABI), never by
where lstmkit is installed. The sources are copied into that folder and built from there, and a
finished build (``lstmkit-build.json`` written last) is imported directly, without running ninja,
so another checkout or venv with the same torch finds it and builds nothing. One process builds a
key at a time (a file lock; the others wait and then import). ``lstmkit build-kernels`` builds it
up front, :func:`status` says where it is and why it is not used, :func:`build_seconds` is the time
this process spent building (the trainer leaves it out of ``--max-time``).

Tests assert that it equals the reference path (outputs, states, every gradient; bidirectional,
padded, every variant, the batch split across threads) and gradcheck it in float64.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import json
import os
import secrets
import shutil
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .cell import CellWeights
from .dropout import Keep, ZoneoutDraw
from .fused import _prev

_CSRC = Path(__file__).with_name("csrc")
_SOURCES = [_CSRC / f for f in ("lstm_cpu.cpp", "step_cpu.cpp", "slstm_cpu.cpp")]  # compiled (slstm: the SLSTM's)
_FILES = [*_SOURCES, _CSRC / "lstm_math.h"]  # everything the build reads from lstmkit (copied, hashed)
_CFLAGS = ["-O3", "-ffast-math", "-fopenmp"]  # OpenMP: at::parallel_for and the step's threads are real
_LDFLAGS = ["-fopenmp"]
_LAYOUT = 2  # the cache folder's layout: part of the key
_MARKER = "lstmkit-build.json"  # written last: the folder holds a finished build
_ERROR_LOG = "last-error.txt"  # the full output of the last failed build
_state: dict = {}  # "ok": loaded (bool); "step", "pack": bindings; "cached": a build exists; "reason"; "seconds"


def available(build: bool = True) -> bool:
    """True once the extension is loaded. The first call loads it, compiling it first (False if
    that fails); with ``build=False`` only a build already cached on this machine is loaded (the
    streaming step of a plain LSTM asks so: it never waits a minute for a compiler), else False and
    a later call may still build it."""
    if "ok" not in _state:
        if not build:
            if "cached" not in _state:  # looked up once: the streaming step asks at every call
                _state["cached"] = _finished(_built_path())
            if not _state["cached"]:
                return False
        _state["ok"] = _load()
    return _state["ok"]


def ensure_built() -> bool:
    """Build the kernel now if it is not cached yet (``lstmkit build-kernels``) and load it: True if
    the compiled path is available (False with ``LSTMKIT_COMPILED=0`` or when the build failed;
    :func:`status` says why)."""
    return available(build=True)


def build_seconds() -> float:
    """Seconds this process spent building the kernel or waiting for another process's build of it
    (0.0 when it was cached): the trainer leaves them out of its time budget."""
    return float(_state.get("seconds", 0.0))


def enabled() -> bool:
    """False when ``LSTMKIT_COMPILED=0`` turns the compiled path off."""
    return os.environ.get("LSTMKIT_COMPILED", "1") != "0"


def status(load: bool = True) -> dict[str, Any]:
    """Where the kernel's build is and whether it is used, without ever compiling: ``name`` (also the
    folder's name), ``key`` (the full hash), ``isa``, ``torch``, ``build_dir``, ``path`` (the
    library), ``built`` (a finished build is cached), ``loaded`` (in this process), ``loadable``
    (with ``load``, a cached build is loaded now to find out), ``reason`` (why it is not used, else
    None), ``setting`` (``LSTMKIT_COMPILED``, None when unset) and ``build_seconds``."""
    name, folder = _build_name(), _build_dir()
    built = _is_built(folder, name)
    if load and built and enabled():
        available(build=False)
    loaded = bool(_state.get("ok", False))
    reason = None
    if not loaded:
        if not enabled():
            reason = "LSTMKIT_COMPILED=0 turns the compiled kernel off"
        elif "reason" in _state:
            reason = _state["reason"]
        elif not built:
            reason = "not built yet: `lstmkit build-kernels` builds it (about a minute), else the first run does"
        else:
            reason = "built, not loaded yet"
    return {
        "name": name,
        "key": _key(),
        "isa": _cpu_flags()[0],
        "torch": str(torch.__version__),
        "build_dir": str(folder),
        "path": str(_library(folder, name)),
        "built": built,
        "loaded": loaded,
        "loadable": loaded,
        "reason": reason,
        "setting": os.environ.get("LSTMKIT_COMPILED"),
        "build_seconds": build_seconds(),
    }


def step(x: Tensor, h: Tensor, c: Tensor, w_blk: Tensor, bias: Tensor | None) -> list[Tensor]:
    """One plain streaming step (no autograd): x (B, I), h and c (B, H) or (1, B, H), ``w_blk`` and
    ``bias`` from :func:`pack` -> [y (B, H), h', c' (shaped as h, c)]. Needs :func:`available`."""
    return _state["step"](x, h, c, w_blk, bias)


def pack(w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None, b_hh: Tensor | None) -> list[Tensor | None]:
    """The step's weights: [W_ih | W_hh] (4H, I + H) as (blocks, I + H, 4, 16) and b_ih + b_hh (4H,)
    as (blocks, 4, 16) or None, H padded to whole blocks of 16 units (``csrc/step_cpu.cpp`` draws
    the layout). Needs :func:`available`."""
    with torch.no_grad():
        return _state["pack"](w_ih, w_hh, b_ih, b_hh)


# ---------------------------------------------------------------------------- the build's key
@functools.cache
def _cpu_flags() -> tuple[str, list[str]]:
    """(name suffix, compiler flags). AVX-512 or AVX2/FMA only when this CPU has them, never
    -march=native: the build cache may be shared by the different machines of a cluster."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        info = ""
    if all(f" {f}" in info for f in ("avx512f", "avx512dq", "avx512vl", "avx512bw", "fma")):
        return "avx512", [
            "-mavx512f",
            "-mavx512dq",
            "-mavx512vl",
            "-mavx512bw",
            "-mavx2",
            "-mfma",
            "-mprefer-vector-width=512",
        ]
    if " avx2" in info and " fma" in info:
        return "avx2", ["-mavx2", "-mfma"]
    return "generic", []


@functools.cache
def _file_bytes() -> dict[str, bytes]:
    """The sources and headers by file name, read once: hashed into the key and copied as read."""
    return {f.name: f.read_bytes() for f in _FILES}


def _key_inputs() -> dict[str, Any]:
    """Everything that makes the binary, and nothing about where lstmkit or torch is installed."""
    suffix, isa = _cpu_flags()
    return {
        "layout": _LAYOUT,
        "sources": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(_file_bytes().items())},
        "compiler": os.environ.get("CXX", "c++"),  # the compiler torch's build runs
        "cflags": [*_CFLAGS, *isa],
        "ldflags": list(_LDFLAGS),
        "isa": suffix,
        "torch": str(torch.__version__),
        "python": sys.implementation.cache_tag + getattr(sys, "abiflags", ""),  # the extension module's ABI
    }


@functools.cache
def _key() -> str:
    return hashlib.sha256(json.dumps(_key_inputs(), sort_keys=True).encode()).hexdigest()


@functools.cache
def _build_name() -> str:
    """The extension's name and its cache folder's: instruction set and the key, so that a build of
    other sources (an older lstmkit), flags or torch is never taken for this one's."""
    return f"lstmkit_cpu_{_cpu_flags()[0]}_{_key()[:16]}"


def _forget_key() -> None:
    """Recompute the key on the next use (tests that change the sources or torch's version)."""
    for fn in (_file_bytes, _key, _build_name):
        fn.cache_clear()


# ---------------------------------------------------------------------------- the cache
def cache_dir() -> Path:
    """The folder of torch's extension builds, the kernel's cache: ``$TORCH_EXTENSIONS_DIR``, else
    ``${XDG_CACHE_HOME:-~/.cache}/torch_extensions/py<XY>_<cpu|cuXY>`` (torch's own choice)."""
    root = os.environ.get("TORCH_EXTENSIONS_DIR")
    if root:
        return Path(root).absolute()
    from torch.utils import cpp_extension

    if torch.version.hip is not None:
        accel = "rocm" + torch.version.hip.replace(".", "")
    elif torch.version.cuda is not None:
        accel = "cu" + torch.version.cuda.replace(".", "")
    else:
        accel = "cpu"
    python = f"py{sys.version_info.major}{sys.version_info.minor}{getattr(sys, 'abiflags', '')}"
    return Path(cpp_extension.get_default_build_root()) / f"{python}_{accel}"


def _build_dir() -> Path:
    return cache_dir() / _build_name()


def _library(folder: Path, name: str) -> Path:
    return folder / (name + (".pyd" if sys.platform == "win32" else ".so"))


def _built_path() -> Path:
    """Where this machine's build of the kernel is (or will be)."""
    return _library(_build_dir(), _build_name())


def _finished(library: Path) -> bool:
    """A finished build: the library and, written after it, the build's record."""
    return library.is_file() and (library.parent / _MARKER).is_file()


def _is_built(folder: Path, name: str) -> bool:
    return _finished(_library(folder, name))


def _import(folder: Path, name: str) -> ModuleType:
    """The built extension, imported from its file (what cpp_extension.load does after ninja)."""
    spec = importlib.util.spec_from_file_location(name, _library(folder, name))
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {_library(folder, name)}")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@contextlib.contextmanager
def _one_builder(path: Path) -> Iterator[bool]:
    """Hold an exclusive lock on ``path`` (released by the OS if the process dies); says so when
    another process holds it. Yields whether it waited."""
    try:
        import fcntl
    except ImportError:  # no flock (Windows): torch's own lock file still serialises ninja
        yield False
        return
    with open(path, "a") as f:
        waited = False
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            waited = True
            print(
                f"lstmkit: waiting for another process compiling the LSTM CPU kernel ({path.parent})…",
                file=sys.stderr,
                flush=True,
            )
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield waited
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all (a temporary file in the same folder, then a rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")  # made with the umask's mode
    try:
        with open(tmp, "xb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _copy_sources(folder: Path) -> list[Path]:
    """The sources in the build folder (each written atomically, and only when missing or different:
    an unchanged copy keeps its time stamp, so ninja has nothing to do); returns the .cpp files."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in _file_bytes().items():
        target = folder / name
        if not (target.is_file() and target.read_bytes() == data):
            _atomic_write(target, data)
    return [folder / f.name for f in _SOURCES]


def _build(folder: Path, name: str) -> ModuleType:
    """Build the kernel in ``folder`` (or wait for the process building it) and import it."""
    from torch.utils import cpp_extension

    start = time.perf_counter()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with _one_builder(folder / "lstmkit.lock") as waited:
            if _is_built(folder, name):  # another process built it while this one waited
                if waited:
                    seconds = time.perf_counter() - start
                    print(
                        f"lstmkit: the LSTM CPU kernel is built (waited {seconds:.0f} s)", file=sys.stderr, flush=True
                    )
                return _import(folder, name)
            if shutil.which("ninja") is None:  # the pip "ninja" package, when its bin is not on PATH
                import ninja

                os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + os.environ.get("PATH", "")
            print(
                "lstmkit: compiling the LSTM CPU kernel once for this machine (about a minute)…",
                file=sys.stderr,
                flush=True,
            )
            sources = _copy_sources(folder / "src")
            # torch's own lock file, left by a build that was killed: this process holds the lock of
            # every lstmkit build of this folder, so nobody else is building here.
            (folder / "lock").unlink(missing_ok=True)
            # -ffast-math at compile time only (vectorised exp from libmvec): the link step does not see
            # it, so loading the library does not switch the process to flush-to-zero.
            mod = cpp_extension.load(
                name=name,
                sources=[str(s) for s in sources],
                extra_cflags=[*_CFLAGS, *_cpu_flags()[1]],
                extra_ldflags=list(_LDFLAGS),
                build_directory=str(folder),
                verbose=False,
            )
            seconds = time.perf_counter() - start
            record = {"name": name, "key": _key(), **_key_inputs(), "seconds": round(seconds, 1), "built": time.time()}
            _atomic_write(folder / _MARKER, json.dumps(record, indent=1).encode())
            print(f"lstmkit: compiled the LSTM CPU kernel in {seconds:.0f} s ({folder})", file=sys.stderr, flush=True)
            return mod
    finally:
        _state["seconds"] = build_seconds() + time.perf_counter() - start


def _reason(exc: BaseException) -> str:
    """One line out of a build's error: the compiler's first error, else the message's first line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
    picked = next((line for line in lines if "error:" in line), None)
    picked = picked or next((line for line in lines if "not found" in line), lines[0])
    return picked if len(picked) <= 300 else picked[:297] + "..."


def _load() -> bool:
    if not enabled():
        return False
    folder, name = _build_dir(), _build_name()
    try:
        mod = _import(folder, name) if _is_built(folder, name) else _build(folder, name)
        _state["step"], _state["pack"] = mod.step, mod.pack  # direct bindings: torch.ops costs ~15 µs a step
        return True
    except Exception as exc:  # no compiler, no ninja, read-only cache...: the fused path still works
        _state["reason"] = _reason(exc)
        with contextlib.suppress(OSError):
            _atomic_write(folder / _ERROR_LOG, f"{type(exc).__name__}: {exc}\n".encode())
        warnings.warn(f"lstmkit: compiled LSTM kernel unavailable, using the fused path ({exc})", stacklevel=3)
        return False


class LayerConsts(NamedTuple):
    """The non-differentiable inputs of one compiled layer (all its directions)."""

    valid: Tensor | None  # (T, B) 1/0 in the compute dtype
    h_masks: list[Tensor | None]  # per direction: (B, H) variational mask on h
    zones: list[tuple[float, int, int, float, int, int]]  # per direction: (p, seed, threshold) for c, then h


def run_compiled_layer(
    x: Tensor,
    weights: list[CellWeights],
    h0: list[Tensor],
    c0: list[Tensor],
    *,
    valid: Tensor | None = None,
    h_masks: list[Tensor | None],
    keep_c: list[Keep],
    keep_h: list[Keep],
) -> tuple[Tensor, Tensor, Tensor]:
    """One layer, all directions: x (T, B, I) -> (y (T, B, D*H), h_n (D, B, H), c_n (D, B, H)).

    The input projections of all directions are one GEMM, x W_ihᵀ with W_ih of every direction
    stacked to (D*4H, I); the kernel reads its direction's columns of that (T, B, D*4H) tensor, runs
    the reverse direction backwards in time (no flipped copies; padding sits before each sequence's
    end and leaves the state alone) and writes its H columns of y. With layer norm, the input LN
    runs inside the kernel too. Masks: ``valid`` (T, B, 1) bool, per-direction ``h_masks`` and
    zoneout ``keep_c``/``keep_h`` (:class:`ZoneoutDraw` in training; mask element (t, b, j) is in the
    layer input's time order for both directions).
    """
    ln = weights[0].ln_ih is not None
    w_ih = torch.cat([w.w_ih for w in weights]) if len(weights) > 1 else weights[0].w_ih  # (D*4H, I)
    biases = [w.b_ih + w.b_hh if w.b_ih is not None and w.b_hh is not None else None for w in weights]  # (4H,)
    if ln:
        xg = F.linear(x, w_ih)  # (T, B, D*4H); biases join the input LN's β in the kernel
        norms = [w.ln_ih for w in weights if w.ln_ih is not None]
        ln_bias = [n.bias if b is None else n.bias + b for n, b in zip(norms, biases)]
    else:
        given = [b for b in biases if b is not None]
        bias = None if not given else (torch.cat(given) if len(given) > 1 else given[0])
        xg = F.linear(x, w_ih, bias)  # (T, B, D*4H)
    flat = []
    for d, w in enumerate(weights):
        ln_ih = (norms[d].weight, ln_bias[d]) if ln else (None, None)
        ln_hh = w.ln_hh if w.ln_hh is not None else (None, None)
        ln_c = w.ln_c if w.ln_c is not None else (None, None)
        flat += [h0[d].contiguous(), c0[d].contiguous(), w.w_hh, w.peephole, *ln_ih, *ln_hh, *ln_c]
    v = valid.squeeze(-1).to(xg.dtype).contiguous() if valid is not None else None  # (T, B) 1/0
    consts = LayerConsts(v, h_masks, [_zone(kc) + _zone(kh) for kc, kh in zip(keep_c, keep_h)])
    return CompiledLayer.apply(consts, xg, *flat)


def _zone(k: Keep) -> tuple[float, int, int]:
    """A zoneout keep factor -> the kernel's (p, seed, threshold); seed -1 = the constant p (eval)."""
    if isinstance(k, ZoneoutDraw):
        return (k.p, k.seed, k.threshold)
    return (float(k) if k is not None else 0.0, -1, 0)


_PER_DIR = 10  # h0, c0, W_hh, peephole, γ_ih, β_ih(+biases), γ_hh, β_hh, γ_c, β_c


class CompiledLayer(torch.autograd.Function):
    """(xg (T, B, D*4H), per direction: h0, c0, W_hh, peephole, γ_ih, β_ih, γ_hh, β_hh, γ_c, β_c)
    -> (Y (T, B, D*H), h_n (D, B, H), c_n (D, B, H)). First derivatives."""

    @staticmethod
    def forward(ctx, consts: LayerConsts, xg, *flat):
        steps, batch, width = xg.shape
        dirs = len(flat) // _PER_DIR
        four_h = width // dirs
        hidden = four_h // 4
        y = xg.new_empty(steps, batch, dirs * hidden)  # (T, B, D*H)
        saved, h_n, c_n = [], [], []
        for d in range(dirs):
            h0, c0, w_hh, peep, g_ih, b_ih, g_hh, b_hh, g_c, b_c = flat[d * _PER_DIR : (d + 1) * _PER_DIR]
            out = torch.ops.lstmkit_cpu.forward(
                xg[..., d * four_h : (d + 1) * four_h],
                h0,
                c0,
                w_hh,
                g_ih,
                b_ih,
                g_hh,
                b_hh,
                g_c,
                b_c,
                peep,
                consts.h_masks[d],
                consts.valid,
                *consts.zones[d],
                d == 1,
                y[..., d * hidden : (d + 1) * hidden],
            )
            _, gates, ct, hs, cs, ahat, a_rs, nhat, n_rs, x_mu, x_rs = out
            h_n.append(hs[0] if d == 1 else hs[-1])  # the reverse direction ends at t = 0
            c_n.append(cs[0] if d == 1 else cs[-1])
            saved += [h0, c0, w_hh, peep, g_ih, g_hh, g_c, b_c, gates, ct, hs, cs, ahat, a_rs, nhat, n_rs, x_mu, x_rs]
        ln_ih = flat[4] is not None
        ctx.consts, ctx.dirs = consts, dirs
        ctx.save_for_backward(xg if ln_ih else None, *saved)
        return y, torch.stack(h_n), torch.stack(c_n)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, d_y, d_hn, d_cn):
        xg, *saved = ctx.saved_tensors
        consts, dirs = ctx.consts, ctx.dirs
        steps, batch, width = d_y.shape[0], d_y.shape[1], 4 * d_y.shape[2]
        four_h, hidden = width // dirs, d_y.shape[2] // dirs
        d_xg = d_y.new_empty(steps, batch, width)  # (T, B, D*4H)
        grads = []
        for d in range(dirs):
            h0, c0, w_hh, peep, g_ih, g_hh, g_c, b_c, gates, ct, hs, cs, ahat, a_rs, nhat, n_rs, x_mu, x_rs = saved[
                d * 18 : (d + 1) * 18
            ]
            cols = slice(d * four_h, (d + 1) * four_h)
            x_d = xg[..., cols] if xg is not None else d_y.new_empty(0, 0, 0)
            _, da, acc, dh0, dc0 = torch.ops.lstmkit_cpu.backward(
                d_y[..., d * hidden : (d + 1) * hidden],
                d_hn[d],
                d_cn[d],
                w_hh,
                x_d,
                gates,
                ct,
                cs,
                c0,
                ahat,
                a_rs,
                nhat,
                n_rs,
                x_mu,
                x_rs,
                g_ih,
                g_hh,
                g_c,
                b_c,
                peep,
                consts.h_masks[d],
                consts.valid,
                *consts.zones[d],
                d == 1,
                d_xg[..., cols],
            )
            h_prev = _prev(h0, hs) if d == 0 else torch.cat([hs[1:], h0.unsqueeze(0)])  # (T, B, H): h before t
            if consts.h_masks[d] is not None:
                h_prev = h_prev * consts.h_masks[d]
            d_whh = da.reshape(-1, four_h).t() @ h_prev.reshape(-1, hidden)  # Σ_t dA_tᵀ h_prev   (4H, H)
            # acc (21H,) = [dγ_hh | dβ_hh | dγ_c | dβ_c | dw_ci, dw_cf, dw_co | dγ_ih | dβ_ih], summed in the kernel
            d_g_hh, d_b_hh, d_g_c, d_b_c, d_peep, d_g_ih, d_b_ih = acc.split(
                [four_h, four_h, hidden, hidden, 3 * hidden, four_h, four_h]
            )
            grads += [dh0, dc0, d_whh, d_peep.view(3, hidden), d_g_ih, d_b_ih, d_g_hh, d_b_hh, d_g_c, d_b_c]
        need = ctx.needs_input_grad[2:]
        return (None, d_xg) + tuple(g if n else None for g, n in zip(grads, need))
