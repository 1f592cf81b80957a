"""The compiled path: the fused recurrence with each step's elementwise work in C++ (CPU).

:mod:`lstmkit.nn.fused` runs a layer-direction as one autograd Function whose per-step work is a
dozen tensor ops; on a CPU with small batches those ops, not the two matrix products, dominate (each
op is one pass over memory plus dispatch). ``csrc/lstm_cpu.cpp`` does the same arithmetic with one
pass per row and step (gates, both layer norms, peepholes, zoneout, padding), leaving the matrix
products to ATen's GEMM, as haste does on GPUs. It is compiled on first use with
``torch.utils.cpp_extension`` (about a minute, cached per machine) and the fused Python path is
used whenever it cannot be: no compiler, a CUDA tensor, a projection, bf16/fp16, double backward,
or ``LSTMKIT_COMPILED=0`` in the environment.

Tests assert that it equals the reference path (outputs, states, every gradient) and gradcheck it
in float64.
"""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from pathlib import Path

import torch
from torch import Tensor

from .cell import CellWeights
from .dropout import Keep
from .fused import _prev
from .sequence import DirectionOut

_SOURCE = Path(__file__).with_name("csrc") / "lstm_cpu.cpp"
_state: dict[str, bool] = {}


def available() -> bool:
    """True once the extension is loaded; compiles it on the first call (False if that fails)."""
    if "ok" not in _state:
        _state["ok"] = _load()
    return _state["ok"]


def _cpu_flags() -> tuple[str, list[str]]:
    """(name suffix, compiler flags). AVX2/FMA only when this CPU has them, never -march=native:
    the build cache may be shared by the different machines of a cluster."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        info = ""
    if " avx2" in info and " fma" in info:
        return "avx2", ["-mavx2", "-mfma"]
    return "generic", []


def _load() -> bool:
    if os.environ.get("LSTMKIT_COMPILED", "1") == "0":
        return False
    try:
        from torch.utils import cpp_extension

        if shutil.which("ninja") is None:  # the pip "ninja" package, when its bin is not on PATH
            import ninja

            os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + os.environ.get("PATH", "")
        suffix, isa = _cpu_flags()
        name = f"lstmkit_cpu_{suffix}"
        built = Path(cpp_extension._get_build_directory(name, False)) / f"{name}.so"
        if not built.exists():
            print("lstmkit: compiling the LSTM CPU kernel (once per machine, about a minute)", file=sys.stderr)
        # -ffast-math at compile time only (vectorised exp from libmvec): the link step does not see
        # it, so loading the library does not switch the process to flush-to-zero.
        cpp_extension.load(name=name, sources=[str(_SOURCE)], extra_cflags=["-O3", "-ffast-math", "-fopenmp-simd", *isa],
                           is_python_module=False, verbose=False)
        return True
    except Exception as exc:  # no compiler, no ninja, read-only cache...: the fused path still works
        warnings.warn(f"lstmkit: compiled LSTM kernel unavailable, using the fused path ({exc})", stacklevel=3)
        return False


def run_compiled(
    xg: Tensor,
    h0: Tensor,
    c0: Tensor,
    w: CellWeights,
    *,
    valid: Tensor | None = None,
    h_mask: Tensor | None = None,
    keep_c: Keep = None,
    keep_h: Keep = None,
) -> DirectionOut:
    """Same contract as :func:`lstmkit.nn.sequence.run_reference` (without gate recording)."""
    ln_hh = w.ln_hh if w.ln_hh is not None else (None, None)
    ln_c = w.ln_c if w.ln_c is not None else (None, None)
    v = valid.squeeze(-1).to(xg.dtype).contiguous() if valid is not None else None  # (T, B) 1/0
    kc, kc_p = _keep(keep_c)
    kh, kh_p = _keep(keep_h)
    consts = (h_mask, v, kc, kh, kc_p, kh_p)
    y, h_n, c_n = CompiledLSTM.apply(consts, xg.contiguous(), h0.contiguous(), c0.contiguous(), w.w_hh,
                                     w.peephole, *ln_hh, *ln_c)
    return DirectionOut(y, h_n, c_n, None)


def _keep(k: Keep) -> tuple[Tensor | None, float]:
    """A zoneout factor -> (per-step mask (T, B, H) or None, constant factor used without one)."""
    if isinstance(k, Tensor):
        return k.contiguous(), 0.0
    return None, float(k) if k is not None else 0.0


class CompiledLSTM(torch.autograd.Function):
    """(xg, h0, c0, W_hh, peephole, γ_hh, β_hh, γ_c, β_c) -> (Y (T, B, H), h_n, c_n). First derivatives."""

    @staticmethod
    def forward(ctx, consts, xg, h0, c0, w_hh, peep, g_hh, b_hh, g_c, b_c):
        h_mask, v, kc, kh, kc_p, kh_p = consts
        y, gates, ct, tn, hs, cs, ahat, a_rs, nhat, n_rs = torch.ops.lstmkit_cpu.forward(
            xg, h0, c0, w_hh, g_hh, b_hh, g_c, b_c, peep, h_mask, v, kc, kh, kc_p, kh_p)
        ctx.consts = consts
        ctx.save_for_backward(h0, c0, w_hh, peep, g_hh, g_c, gates, ct, tn, hs, cs, ahat, a_rs, nhat, n_rs)
        return y, hs[-1].clone(), cs[-1].clone()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, d_y, d_hn, d_cn):
        h0, c0, w_hh, peep, g_hh, g_c, gates, ct, tn, hs, cs, ahat, a_rs, nhat, n_rs = ctx.saved_tensors
        h_mask, v, kc, kh, kc_p, kh_p = ctx.consts
        dz, da, acc, dh0, dc0 = torch.ops.lstmkit_cpu.backward(
            d_y, d_hn, d_cn, w_hh, gates, ct, tn, cs, c0, ahat, a_rs, nhat, n_rs, g_hh, g_c, peep, h_mask, v, kc, kh,
            kc_p, kh_p)
        hidden = c0.shape[-1]
        h_prev = _prev(h0, hs)  # (T, B, H): h_{t-1}
        hm = h_prev if h_mask is None else h_prev * h_mask
        d_whh = da.reshape(-1, 4 * hidden).t() @ hm.reshape(-1, hidden)  # Σ_t dA_tᵀ h_{t-1}   (4H, H)
        # acc (13H,) = [dγ_hh | dβ_hh | dγ_c | dβ_c | dw_ci | dw_cf | dw_co], summed in the kernel
        d_g_hh, d_b_hh, d_g_c, d_b_c, d_peep = acc.split([4 * hidden, 4 * hidden, hidden, hidden, 3 * hidden])
        d_peep = d_peep.view(3, hidden)
        grads = (dz, dh0, dc0, d_whh, d_peep, d_g_hh, d_b_hh, d_g_c, d_b_c)
        return (None,) + tuple(g if need else None for g, need in zip(grads, ctx.needs_input_grad[1:]))
