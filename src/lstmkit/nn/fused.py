"""The fused path: the recurrence of one layer-direction as one autograd Function.

It computes exactly what :func:`lstmkit.nn.sequence.run_reference` computes (all variants, lengths),
but the forward loop runs without autograd into preallocated buffers, and the backward through time
is written by hand:

* per step only what the recurrence needs (elementwise gate derivatives, one (B, 4H) x (4H, H_out)
  matmul for dh_{t-1});
* every gate-derivative factor that does not depend on the incoming gradient is computed for all T
  steps at once before the loop, e.g. ``∂z_i = dc̃ ⊙ [g ⊙ i(1-i)]``;
* the weight gradients are single matmuls over all T*B rows after the loop:
  ``dW_hh = Σ_t dA_tᵀ h_{t-1} = dAᵀ H_prev``, ``dW_hr = dĤᵀ U``.

Forward, per step (see cell.py for the plain equations; ⊙ elementwise)::

    h_m = h_{t-1} ⊙ m_h                     variational mask on h (optional)
    a   = W_hh h_m ;  a ← LN_hh(a)          (B, 4H)
    z   = xg_t + a ;  z_i,f += w_ci,f ⊙ c_{t-1}
    i, f, g = σ(z_i), σ(z_f), tanh(z_g) ;  c̃ = f ⊙ c_{t-1} + i ⊙ g
    z_o += w_co ⊙ c̃ ;  o = σ(z_o) ;  τ = tanh(LN_c(c̃)) ;  u = o ⊙ τ ;  ĥ = W_hr u  (or ĥ = u)
    c' = lerp(c̃, c_{t-1}, k_c) ;  h' = lerp(ĥ, h_{t-1}, k_h)          zoneout (optional)
    c_t, h_t = (c', h') where valid else (c_{t-1}, h_{t-1}) ;  y_t = h' ⊙ valid
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .cell import LN_EPS, CellWeights
from .dropout import Keep
from .sequence import DirectionOut

_ln_backward = torch.ops.aten.native_layer_norm_backward


@dataclass
class Options:
    """The non-differentiable inputs of one layer-direction run."""

    valid: Tensor | None  # (T, B, 1) bool
    h_mask: Tensor | None  # (B, H_out)
    keep_c: Keep  # (T, B, H) or float
    keep_h: Keep  # (T, B, H_out) or float


def run_fused(
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
    opts = Options(valid, h_mask, keep_c, keep_h)
    y, h_n, c_n = FusedLSTM.apply(opts, xg.contiguous(), h0, c0, w.w_hh, w.w_hr, w.peephole, *ln_hh, *ln_c)
    return DirectionOut(y, h_n, c_n, None)


class FusedLSTM(torch.autograd.Function):
    """(xg, h0, c0, W_hh, W_hr, peephole, γ_hh, β_hh, γ_c, β_c) -> (Y (T, B, H_out), h_n, c_n).

    First derivatives only (``once_differentiable``); use ``impl="reference"`` for double backward."""

    @staticmethod
    def forward(ctx, opts: Options, xg, h0, c0, w_hh, w_hr, peep, g_hh, b_hh, g_c, b_c):
        saved = _forward_loop(opts, xg, h0, c0, w_hh, w_hr, peep, (g_hh, b_hh), (g_c, b_c))
        ctx.opts, ctx.saved = opts, saved
        ctx.save_for_backward(h0, c0, w_hh, w_hr, peep, g_hh, b_hh, g_c, b_c)
        return saved["y"], saved["h_n"], saved["c_n"]

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, d_y, d_hn, d_cn):
        h0, c0, w_hh, w_hr, peep, g_hh, b_hh, g_c, b_c = ctx.saved_tensors
        s, opts = ctx.saved, ctx.opts
        grads = _backward(opts, s, d_y, d_hn, d_cn, h0, c0, w_hh, w_hr, peep, g_hh, g_c)
        return (None,) + tuple(gr if need else None for gr, need in zip(grads, ctx.needs_input_grad[1:]))


def _buffers(xg: Tensor, out_size: int, opts: Options, proj: bool) -> dict:
    """Preallocated per-step storage (T, B, N); aliases where two quantities coincide."""
    steps, batch, four_h = xg.shape
    hidden = four_h // 4
    new = lambda n: xg.new_empty(steps, batch, n)  # noqa: E731
    b = {"z": new(four_h), "ct": new(hidden), "tn": new(hidden), "y": new(out_size)}
    simple = opts.valid is None and opts.keep_c is None and opts.keep_h is None
    b["u"] = b["y"] if simple and not proj else new(hidden)  # u = o ⊙ tanh(n)
    b["c"] = b["ct"] if opts.valid is None and opts.keep_c is None else new(hidden)  # cell states
    b["h"] = b["y"] if opts.valid is None else new(out_size)  # hidden states
    return b


def _forward_loop(opts: Options, xg, h0, c0, w_hh, w_hr, peep, ln_hh, ln_c) -> dict:
    """The forward recurrence (no autograd), keeping what the backward needs."""
    steps, batch, four_h = xg.shape
    w_t = w_hh.t()  # (H_out, 4H)
    if ln_hh[0] is None:
        xb, ln_hh_g = xg, None
    else:  # β_hh folded into the input term
        xb, ln_hh_g = xg + ln_hh[1], ln_hh[0]
    buf = _buffers(xg, w_hh.shape[1], opts, w_hr is not None)
    views = {k: v.unbind(0) for k, v in buf.items()}
    per_step = zip(
        xb.unbind(0),
        views["z"],
        views["ct"],
        views["tn"],
        views["u"],
        views["c"],
        views["h"],
        views["y"],
        _steps(opts.valid, steps),
        _steps(opts.keep_c, steps),
        _steps(opts.keep_h, steps),
    )
    hidden = four_h // 4
    rec: dict[str, list[Tensor]] = {k: [] for k in ("a_mu", "a_rs", "n_mu", "n_rs")}
    buf["a"] = xg.new_empty(steps, batch, four_h) if ln_hh_g is not None else None
    a_views = buf["a"].unbind(0) if ln_hh_g is not None else [None] * steps
    h, c = h0, c0
    for (xb_t, z, ct, tn, u, c_out, h_out, y, v, kc, kh), a in zip(per_step, a_views):
        hm = h if opts.h_mask is None else h * opts.h_mask  # (B, H_out)
        if ln_hh_g is None:
            torch.addmm(xb_t, hm, w_t, out=z)  # z = xg_t + W_hh h_m     (B, 4H)
        else:
            a_ln, mu, rs = torch.native_layer_norm(torch.mm(hm, w_t, out=a), (four_h,), ln_hh_g, None, LN_EPS)
            torch.add(xb_t, a_ln, out=z)  # γ ⊙ â applied inside the norm kernel
            rec["a_mu"].append(mu)
            rec["a_rs"].append(rs)
        _cell(z.view(batch, 4, hidden), c, ct, tn, u, peep, ln_c, rec)
        h, c = _output(u, ct, h, c, y, h_out, c_out, w_hr, v, kc, kh)
    buf.update({k: torch.stack(v) for k, v in rec.items() if v})
    buf.update(h_n=h.clone(), c_n=c.clone())  # not views of buffers the backward reads
    return buf


def _steps(x, steps: int) -> list:
    """Per-step views of a (T, ...) tensor (``unbind``), else ``steps`` copies of x (None, float)."""
    return list(x.unbind(0)) if isinstance(x, Tensor) else [x] * steps


def _cell(zb, c, ct, tn, u, peep, ln_c, rec) -> None:
    """Gates of one step from the pre-activations zb (B, 4, H), in place: zb <- i, f, g, o;
    ct <- c̃; tn <- tanh(n) (n = LN_c(c̃) or c̃); u <- o ⊙ tanh(n)."""
    if peep is not None:
        zb[:, :2].addcmul_(c.unsqueeze(1), peep[:2])  # z_i,f += w_ci,f ⊙ c_{t-1}
    zb[:, :2].sigmoid_()  # i, f
    i, f, g, o = zb.unbind(1)
    g.tanh_()
    torch.mul(f, c, out=ct).addcmul_(i, g)  # c̃ = f ⊙ c + i ⊙ g   (B, H)
    if peep is not None:
        o.addcmul_(ct, peep[2])  # z_o += w_co ⊙ c̃
    o.sigmoid_()
    if ln_c[0] is None:
        torch.tanh(ct, out=tn)
    else:
        n, mu, rs = torch.native_layer_norm(ct, ct.shape[-1:], ln_c[0], ln_c[1], LN_EPS)
        torch.tanh(n, out=tn)  # tanh(LN_c(c̃))
        rec["n_mu"].append(mu), rec["n_rs"].append(rs)
    torch.mul(o, tn, out=u)  # u = o ⊙ tanh(n)


def _output(u, ct, h, c, y, h_out, c_out, w_hr, v, kc, kh) -> tuple[Tensor, Tensor]:
    """Projection, zoneout and length masking of one step; writes y_t and the states."""
    if w_hr is not None:
        u = u @ w_hr.t()  # ĥ (B, P)
    if v is None:  # zoneout straight into the state buffers
        c_new = ct if kc is None else torch.lerp(ct, c, kc, out=c_out)
        h_new = u if kh is None else torch.lerp(u, h, kh, out=y)
        if h_new is not y:
            y.copy_(h_new)
        if c_new is not c_out:
            c_out.copy_(c_new)
        return y, c_out
    c_new = ct if kc is None else torch.lerp(ct, c, kc)  # zoneout
    h_new = u if kh is None else torch.lerp(u, h, kh)
    torch.mul(h_new, v, out=y)  # padding -> 0
    return torch.where(v, h_new, h, out=h_out), torch.where(v, c_new, c, out=c_out)


def _prev(first: Tensor, states: Tensor) -> Tensor:
    """(T, B, N) states s_0..s_{T-1} -> the previous states s_{-1} = first, s_0, ..., s_{T-2}."""
    return torch.cat([first.unsqueeze(0), states[:-1]])


def _gate_factors(s: dict, c_prev: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Gradient factors of all steps at once, from the activated gates (each (T, B, H)):
    ∂z_i = dc̃ ⊙ g i(1-i), ∂z_f = dc̃ ⊙ c_{t-1} f(1-f), ∂z_g = dc̃ ⊙ i (1-g²)   -> p3 (T, B, 3, H);
    ∂z_o = du ⊙ τ o(1-o) -> p_o (T, B, H);  dn = du ⊙ o (1-τ²) -> k (T, B, H)."""
    hidden = c_prev.shape[-1]
    i, f, g, o = s["z"].split(hidden, dim=-1)
    tn = s["tn"]  # tanh(n)
    one = tn.new_ones(())
    p3 = c_prev.new_empty(*c_prev.shape[:2], 3, hidden)  # (T, B, 3, H), written in place (two passes per factor)
    torch.mul(g, torch.addcmul(i, i, i, value=-1), out=p3[:, :, 0])  # g i(1-i)
    torch.mul(c_prev, torch.addcmul(f, f, f, value=-1), out=p3[:, :, 1])  # c_{t-1} f(1-f)
    torch.mul(i, torch.addcmul(one, g, g, value=-1), out=p3[:, :, 2])  # i (1-g²)
    return p3, tn * torch.addcmul(o, o, o, value=-1), o * torch.addcmul(one, tn, tn, value=-1)


def _backward(opts: Options, s: dict, d_y, d_hn, d_cn, h0, c0, w_hh, w_hr, peep, g_hh, g_c) -> tuple:
    """Backpropagation through time for :func:`_forward_loop` (module docstring): returns the
    gradients of (xg, h0, c0, W_hh, W_hr, peephole, γ_hh, β_hh, γ_c, β_c)."""
    steps, batch, four_h = s["z"].shape
    hidden = four_h // 4
    c_prev = _prev(c0, s["c"])  # (T, B, H)
    p3, p_o, k = _gate_factors(s, c_prev)
    dz = torch.empty_like(s["z"])  # (T, B, 4H) = d xg
    dz4 = dz.view(steps, batch, 4, hidden)
    ps = dict(
        d_y=d_y.unbind(0),
        p3=p3.unbind(0),
        p_o=p_o.unbind(0),
        k=k.unbind(0),
        f=s["z"][..., hidden : 2 * hidden].unbind(0),
        dz3=dz4[:, :, :3].unbind(0),
        dzo=dz4[:, :, 3].unbind(0),
        dz=dz.unbind(0),
        v=_steps(opts.valid, steps),
        kc=_steps(opts.keep_c, steps),
        kh=_steps(opts.keep_h, steps),
    )
    if g_c is not None:
        ps.update(ct=s["ct"].unbind(0), n_mu=s["n_mu"].unbind(0), n_rs=s["n_rs"].unbind(0))
    if g_hh is not None:
        ps.update(a=s["a"].unbind(0), a_mu=s["a_mu"].unbind(0), a_rs=s["a_rs"].unbind(0))
    rec: dict[str, Any] = {"d_hhat": []}
    if g_c is not None:  # per-step gradients the weight gradients read, written in place
        rec["d_n"] = torch.empty_like(s["ct"])  # dL/d LN_c(c̃)  (T, B, H)
        ps["d_n"] = rec["d_n"].unbind(0)
    if g_hh is not None:
        rec["d_a"] = []  # dL/d(W_hh h_m), per step (B, 4H)
    dh, dc = d_hn, d_cn
    for t in range(steps - 1, -1, -1):
        dh, dc = _backward_step(t, ps, rec, dh, dc, opts, w_hh, w_hr, peep, g_hh, g_c)
    h_prev = _prev(h0, s["h"])  # (T, B, H_out)
    hm = h_prev if opts.h_mask is None else h_prev * opts.h_mask
    return (dz, dh, dc) + _weight_grads(s, rec, dz, hm, c_prev, w_hr, peep, g_hh, g_c)


def _backward_step(t, ps, rec, dh, dc, opts, w_hh, w_hr, peep, g_hh, g_c):
    """One step back: (dL/dh_t, dL/dc_t) -> (dL/dh_{t-1}, dL/dc_{t-1}); writes dz_t."""
    dh1 = dh + ps["d_y"][t]
    dc1 = dc
    v, kc, kh = ps["v"][t], ps["kc"][t], ps["kh"][t]
    dh_keep = dc_keep = None  # gradient that skips the step (padding, zoneout)
    if v is not None:
        dh1, dh_keep = torch.where(v, dh1, 0.0), torch.where(v, 0.0, dh)
        dc1, dc_keep = torch.where(v, dc, 0.0), torch.where(v, 0.0, dc)
    if kh is not None:  # h' = kh h_{t-1} + (1-kh) ĥ: kh dh goes to h_{t-1}, the rest to ĥ
        zk = dh1 * kh
        dh1 = dh1 - zk
        dh_keep = zk if dh_keep is None else dh_keep.add_(zk)
    dct = None
    if kc is not None:  # c' = kc c_{t-1} + (1-kc) c̃
        zk = dc1 * kc
        dct = dc1 - zk
        dc_keep = zk if dc_keep is None else dc_keep.add_(zk)
    else:
        dct = dc1
    du = dh1
    if w_hr is not None:
        rec["d_hhat"].append(dh1)
        du = dh1 @ w_hr  # (B, H)
    dzo = torch.mul(du, ps["p_o"][t], out=ps["dzo"][t])  # ∂z_o
    if g_c is None:
        dn = du * ps["k"][t]  # dL/dc̃ through h
    else:
        dn = torch.mul(du, ps["k"][t], out=ps["d_n"][t])  # dL/d LN_c(c̃)
        dn = _ln_backward(
            dn, ps["ct"][t], dn.shape[-1:], ps["n_mu"][t], ps["n_rs"][t], g_c, None, [True, False, False]
        )[0]
    dct = dct + dn
    if peep is not None:
        dct = torch.addcmul(dct, dzo, peep[2])
    dz3 = torch.mul(ps["p3"][t], dct.unsqueeze(1), out=ps["dz3"][t])  # ∂z_i, ∂z_f, ∂z_g  (B, 3, H)
    dc = dct * ps["f"][t]
    if peep is not None:
        dc = dc.addcmul_(dz3[:, 0], peep[0]).addcmul_(dz3[:, 1], peep[1])
    if dc_keep is not None:
        dc = dc + dc_keep
    da = ps["dz"][t]  # (B, 4H)
    if g_hh is not None:
        da = _ln_backward(
            da, ps["a"][t], da.shape[-1:], ps["a_mu"][t], ps["a_rs"][t], g_hh, None, [True, False, False]
        )[0]
        rec["d_a"].append(da)
    dh = da @ w_hh  # (B, H_out)
    if opts.h_mask is not None:
        dh = dh * opts.h_mask
    if dh_keep is not None:
        dh = dh + dh_keep
    return dh, dc


def _weight_grads(s, rec, dz, hm, c_prev, w_hr, peep, g_hh, g_c) -> tuple:
    """Parameter gradients as sums over all T*B rows (one matmul each for the matrices)."""
    steps, batch, four_h = dz.shape
    hidden = four_h // 4
    d_a = torch.stack(rec["d_a"][::-1]) if g_hh is not None else dz  # (T, B, 4H)
    d_whh = d_a.reshape(-1, four_h).t() @ hm.reshape(-1, hm.shape[-1])  # (4H, H_out)
    d_whr = d_peep = d_g_hh = d_b_hh = d_g_c = d_b_c = None
    if w_hr is not None:
        d_hhat = torch.stack(rec["d_hhat"][::-1])  # (T, B, P)
        d_whr = d_hhat.reshape(-1, d_hhat.shape[-1]).t() @ s["u"].reshape(-1, hidden)  # (P, H)
    if peep is not None:
        dz4 = dz.view(steps, batch, 4, hidden)
        d_peep = torch.stack(
            [
                (dz4[:, :, 0] * c_prev).sum((0, 1)),
                (dz4[:, :, 1] * c_prev).sum((0, 1)),
                (dz4[:, :, 3] * s["ct"]).sum((0, 1)),
            ]
        )  # (3, H)
    if g_hh is not None:
        d_g_hh, d_b_hh = _norm_weight_grad(dz, s["a"], s["a_mu"], s["a_rs"]), dz.sum((0, 1))
    if g_c is not None:
        d_n = rec["d_n"]  # (T, B, H)
        d_g_c, d_b_c = _norm_weight_grad(d_n, s["ct"], s["n_mu"], s["n_rs"]), d_n.sum((0, 1))
    return d_whh, d_whr, d_peep, d_g_hh, d_b_hh, d_g_c, d_b_c


def _norm_weight_grad(d_out: Tensor, x: Tensor, mu: Tensor, rs: Tensor) -> Tensor:
    """dγ = Σ_{t,b} d_out ⊙ x̂ with x̂ = (x - μ) rs (T, B, N): the sum over rows of rs as one
    matrix-vector product, x̂ never formed (three passes over (T, B, N), not five)."""
    n = x.shape[-1]
    prod = (x - mu).mul_(d_out).reshape(-1, n)  # (T*B, N)
    return torch.mv(prod.t(), rs.reshape(-1))
