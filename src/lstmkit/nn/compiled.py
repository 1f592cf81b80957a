"""The compiled path: the fused recurrence with each step's elementwise work in C++ (CPU).

:mod:`lstmkit.nn.fused` runs a layer-direction as one autograd Function whose per-step work is a
dozen tensor ops; on a CPU with small batches those ops, not the two matrix products, dominate (each
op is one pass over memory plus dispatch). ``csrc/lstm_cpu.cpp`` does the same arithmetic with one
pass per row and step (gates, the three layer norms, peepholes, zoneout, padding), leaving the
matrix products to ATen's GEMM, as haste does on GPUs. A whole layer is one autograd Function
(:class:`CompiledLayer`): one input GEMM for all directions, the reverse direction run backwards in
time inside the kernel (no flipped copies, no concatenation of the outputs), zoneout masks hashed
where they are used (:class:`~lstmkit.nn.dropout.ZoneoutDraw`) instead of read from memory.

It is compiled on first use with ``torch.utils.cpp_extension`` (about a minute, cached per
machine and instruction set: AVX-512, AVX2 or generic) and the fused Python path is used whenever
it cannot be: no compiler, a CUDA tensor, a projection, bf16/fp16, double backward, or
``LSTMKIT_COMPILED=0`` in the environment.

Tests assert that it equals the reference path (outputs, states, every gradient; bidirectional,
padded, every variant, the batch split across threads) and gradcheck it in float64.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import sys
import warnings
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .cell import CellWeights
from .dropout import Keep, ZoneoutDraw
from .fused import _prev

_SOURCES = [Path(__file__).with_name("csrc") / f for f in ("lstm_cpu.cpp", "step_cpu.cpp")]  # + lstm_math.h
_state: dict = {}  # "ok": loaded (bool); "step": the streaming step function; "cached": a build exists


def available(build: bool = True) -> bool:
    """True once the extension is loaded. The first call loads it, compiling it first (False if
    that fails); with ``build=False`` only a build already cached on this machine is loaded (the
    streaming step of a plain LSTM asks so: it never waits a minute for a compiler), else False and
    a later call may still build it."""
    if "ok" not in _state:
        if not build:
            if "cached" not in _state:  # looked up once: the streaming step asks at every call
                _state["cached"] = _built_path().exists()
            if not _state["cached"]:
                return False
        _state["ok"] = _load()
    return _state["ok"]


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


_CFLAGS = ["-O3", "-ffast-math", "-fopenmp"]  # OpenMP: at::parallel_for and the step's threads are real


@functools.cache
def _build_name() -> str:
    """The extension's name: instruction set and a hash of the sources and flags, so that a build of
    other sources (an older lstmkit) is never taken for this one's cached build."""
    suffix, isa = _cpu_flags()
    digest = hashlib.sha1(" ".join(_CFLAGS + isa).encode())
    for f in [*_SOURCES, _SOURCES[0].with_name("lstm_math.h")]:
        digest.update(f.read_bytes())
    return f"lstmkit_cpu_{suffix}_{digest.hexdigest()[:10]}"


def _built_path() -> Path:
    """Where torch.utils.cpp_extension keeps this machine's build of the kernel."""
    from torch.utils import cpp_extension

    name = _build_name()
    return Path(cpp_extension._get_build_directory(name, False)) / f"{name}.so"


def _load() -> bool:
    if os.environ.get("LSTMKIT_COMPILED", "1") == "0":
        return False
    try:
        from torch.utils import cpp_extension

        if shutil.which("ninja") is None:  # the pip "ninja" package, when its bin is not on PATH
            import ninja

            os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + os.environ.get("PATH", "")
        name, isa = _build_name(), _cpu_flags()[1]
        if not _built_path().exists():
            print("lstmkit: compiling the LSTM CPU kernel (once per machine, about a minute)", file=sys.stderr)
        # -ffast-math at compile time only (vectorised exp from libmvec): the link step does not see
        # it, so loading the library does not switch the process to flush-to-zero.
        mod = cpp_extension.load(
            name=name,
            sources=[str(f) for f in _SOURCES],
            extra_cflags=[*_CFLAGS, *isa],
            extra_ldflags=["-fopenmp"],
            verbose=False,
        )
        _state["step"], _state["pack"] = mod.step, mod.pack  # direct bindings: torch.ops costs ~15 µs a step
        return True
    except Exception as exc:  # no compiler, no ninja, read-only cache...: the fused path still works
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
