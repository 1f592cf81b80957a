"""The LSTM cell: the gate equations, written out once, and :class:`LSTMCell`.

One step of an LSTM (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000), for a
batch of B inputs x (B, I), previous hidden state h (B, H_out) and cell state c (B, H)::

    i  = σ(W_ii x + b_ii + W_hi h + b_hi)          input gate        (B, H)
    f  = σ(W_if x + b_if + W_hf h + b_hf)          forget gate       (B, H)
    g  = tanh(W_ig x + b_ig + W_hg h + b_hg)       candidate cell    (B, H)
    o  = σ(W_io x + b_io + W_ho h + b_ho)          output gate       (B, H)
    c' = f ⊙ c + i ⊙ g                             new cell state    (B, H)
    h' = o ⊙ tanh(c')                              new hidden state  (B, H)
    h' = W_hr h'                                   only with a projection (proj_size P > 0): (B, P)

The four gate weight matrices are stored fused, in the order i | f | g | o, exactly as torch does:
``weight_ih`` is (4H, I) = [W_ii; W_if; W_ig; W_io], ``weight_hh`` is (4H, H_out), ``bias_ih`` and
``bias_hh`` are (4H,).

Variants (each optional, any combination):

* layer norm (Ba et al. 2016): the input and recurrent pre-activations are normalised separately over
  their 4H features, ``LN_ih(W_ih x) + LN_hh(W_hh h) + b_ih + b_hh``, and the cell is normalised before
  its tanh: ``h' = o ⊙ tanh(LN_c(c'))`` (the carried state c' itself is not normalised).
* peephole connections (Gers & Schmidhuber 2000): ``i`` and ``f`` also see ``w_ci ⊙ c``, ``w_cf ⊙ c``;
  ``o`` sees the new cell ``w_co ⊙ c'``.

Because the input term ``W_ih x + b`` does not depend on the recurrence, a sequence layer computes it
for all T steps with one matmul (:func:`input_projection`) and feeds it to :func:`cell_step` one step
at a time.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import _VF, Tensor, nn

LN_EPS = 1e-5


class Gates(NamedTuple):
    """Per-step gate activations of one layer and direction; every field (B, T, H), batch-major."""

    i: Tensor  # input gate
    f: Tensor  # forget gate
    g: Tensor  # candidate cell
    o: Tensor  # output gate
    c: Tensor  # cell state after the step


class Norm(NamedTuple):
    """Affine parameters of one layer norm: weight γ and bias β, each (N,)."""

    weight: Tensor
    bias: Tensor


class CellWeights(NamedTuple):
    """The parameters one layer-direction uses. Shapes: H hidden, H_out = P or H, I input."""

    w_ih: Tensor  # (4H, I)   i|f|g|o
    w_hh: Tensor  # (4H, H_out)
    b_ih: Tensor | None  # (4H,)
    b_hh: Tensor | None  # (4H,)
    w_hr: Tensor | None = None  # (P, H) projection
    peephole: Tensor | None = None  # (3, H): rows w_ci, w_cf, w_co
    ln_ih: Norm | None = None  # over 4H
    ln_hh: Norm | None = None  # over 4H
    ln_c: Norm | None = None  # over H


class StepOut(NamedTuple):
    """What one cell step produces: the new states and the gate activations (each (B, H))."""

    h: Tensor  # (B, H_out) new hidden state (projected if P > 0)
    c: Tensor  # (B, H) new cell state
    i: Tensor
    f: Tensor
    g: Tensor
    o: Tensor


def input_projection(x: Tensor, w: CellWeights) -> Tensor:
    """The input half of every gate pre-activation, for all steps at once.

    ``x`` (..., I) -> (..., 4H): ``LN_ih(x W_ihᵀ) + b_ih + b_hh`` (LN only with layer norm). Both biases
    are folded in here, so that the recurrent loop adds only ``W_hh h``.
    """
    bias = (w.b_ih + w.b_hh) if w.b_ih is not None and w.b_hh is not None else None  # (4H,)
    if w.ln_ih is None:
        return F.linear(x, w.w_ih, bias)  # x W_ihᵀ + b, the bias added inside the GEMM   (..., 4H)
    xg = x @ w.w_ih.t()  # (..., 4H)
    # γ ⊙ x̂ + β + b as one layer-norm call with bias β + b: no separate pass over (..., 4H)
    ln_bias = w.ln_ih.bias if bias is None else w.ln_ih.bias + bias
    return F.layer_norm(xg, xg.shape[-1:], w.ln_ih.weight, ln_bias, LN_EPS)


def cell_step(xg: Tensor, h: Tensor, c: Tensor, w: CellWeights, w_hh_t: Tensor | None = None) -> StepOut:
    """One LSTM step from the gate equations (module docstring).

    Args:
        xg: (B, 4H) input pre-activation of this step, from :func:`input_projection`.
        h: (B, H_out) previous hidden state (after any recurrent dropout mask).
        c: (B, H) previous cell state.
        w: the layer-direction's weights.
        w_hh_t: ``w.w_hh.t()`` (H_out, 4H), passed in by loops that reuse it every step.
    """
    hidden = c.shape[-1]
    rec = h @ (w.w_hh.t() if w_hh_t is None else w_hh_t)  # (B, 4H)
    if w.ln_hh is not None:
        rec = F.layer_norm(rec, rec.shape[-1:], w.ln_hh.weight, w.ln_hh.bias, LN_EPS)
    z_i, z_f, z_g, z_o = (xg + rec).split(hidden, dim=-1)  # each (B, H)
    if w.peephole is not None:
        w_ci, w_cf, w_co = w.peephole.unbind(0)  # each (H,)
        z_i = z_i + w_ci * c
        z_f = z_f + w_cf * c
    i = torch.sigmoid(z_i)  # input gate
    f = torch.sigmoid(z_f)  # forget gate
    g = torch.tanh(z_g)  # candidate
    c_new = f * c + i * g  # c' = f ⊙ c + i ⊙ g
    if w.peephole is not None:
        z_o = z_o + w_co * c_new
    o = torch.sigmoid(z_o)  # output gate
    c_out = c_new
    if w.ln_c is not None:
        c_out = F.layer_norm(c_new, (hidden,), w.ln_c.weight, w.ln_c.bias, LN_EPS)
    h_new = o * torch.tanh(c_out)  # h' = o ⊙ tanh(c')      (B, H)
    if w.w_hr is not None:
        h_new = h_new @ w.w_hr.t()  # (B, P)
    return StepOut(h_new, c_new, i, f, g, o)


def fast_step(x: Tensor, h: Tensor, c: Tensor, w: CellWeights) -> tuple[Tensor, Tensor]:
    """One plain step (no layer norm, no peephole) in a single call of torch's fused cell kernel
    (``torch._VF.lstm_cell``, the op behind torch.nn.LSTMCell) on these weights, for streaming:
    the equations of :func:`cell_step` without the per-op Python overhead.
    x (B, I), h (B, H), c (B, H) -> (h' (B, H), c' (B, H))."""
    if w.w_hr is not None or w.peephole is not None or w.ln_hh is not None:
        raise ValueError("fast_step computes the plain cell only (no projection, peephole or layer norm)")
    return _VF.lstm_cell(x, (h, c), w.w_ih, w.w_hh, w.b_ih, w.b_hh)


def init_uniform_(params: list[Tensor], hidden_size: int) -> None:
    """torch's LSTM initialisation: every weight and bias ~ U(-1/√H, 1/√H)."""
    bound = 1.0 / math.sqrt(hidden_size)
    with torch.no_grad():
        for p in params:
            p.uniform_(-bound, bound)


def set_forget_bias_(b_ih: Tensor, b_hh: Tensor, value: float) -> None:
    """Initialise the forget-gate bias so that b_if + b_hf = ``value`` (b_if = value, b_hf = 0)."""
    hidden = b_ih.shape[0] // 4
    with torch.no_grad():
        b_ih[hidden : 2 * hidden].fill_(value)
        b_hh[hidden : 2 * hidden].zero_()


class LSTMCell(nn.Module):
    """One LSTM step as a module, a drop-in for :class:`torch.nn.LSTMCell`.

    Same constructor, parameter names and shapes (``weight_ih`` (4H, I), ``weight_hh`` (4H, H),
    ``bias_ih``, ``bias_hh`` (4H,)) and call: ``h', c' = cell(x, (h, c))`` with x (B, I) or (I,), h and
    c (B, H) or (H,). Optional variants: ``layer_norm`` (adds ``ln_ih_weight`` ... ``ln_c_bias``),
    ``peephole`` (adds ``weight_ch`` (3, H)) and ``forget_bias`` (initial b_if + b_hf).
    The step is computed from the equations by :func:`cell_step`.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device=None,
        dtype=None,
        *,
        layer_norm: bool = False,
        peephole: bool = False,
        forget_bias: float | None = None,
    ) -> None:
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        self.layer_norm, self.peephole = layer_norm, peephole
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size, **kw))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size, **kw))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(4 * hidden_size, **kw))
            self.bias_hh = nn.Parameter(torch.empty(4 * hidden_size, **kw))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        if peephole:
            self.weight_ch = nn.Parameter(torch.empty(3, hidden_size, **kw))
        if layer_norm:
            for name, size in (("ih", 4 * hidden_size), ("hh", 4 * hidden_size), ("c", hidden_size)):
                setattr(self, f"ln_{name}_weight", nn.Parameter(torch.ones(size, **kw)))
                setattr(self, f"ln_{name}_bias", nn.Parameter(torch.zeros(size, **kw)))
        self.reset_parameters(forget_bias)

    def reset_parameters(self, forget_bias: float | None = None) -> None:
        """U(-1/√H, 1/√H) for the weights and biases, as torch; layer norm γ=1, β=0."""
        init_uniform_([p for n, p in self.named_parameters() if not n.startswith("ln_")], self.hidden_size)
        if forget_bias is not None:
            if not self.bias:
                raise ValueError("forget_bias needs bias=True")
            set_forget_bias_(self.bias_ih, self.bias_hh, forget_bias)

    def weights(self) -> CellWeights:
        """The parameters as a :class:`CellWeights` for :func:`cell_step`."""
        norm = (
            (lambda n: Norm(getattr(self, f"ln_{n}_weight"), getattr(self, f"ln_{n}_bias")))
            if self.layer_norm
            else (lambda n: None)
        )
        return CellWeights(
            self.weight_ih,
            self.weight_hh,
            self.bias_ih,
            self.bias_hh,
            None,
            self.weight_ch if self.peephole else None,
            norm("ih"),
            norm("hh"),
            norm("c"),
        )

    def forward(self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        """x (B, I) or (I,), hx = (h, c) each (B, H) or (H,) (zeros if None) -> (h', c')."""
        if input.dim() not in (1, 2):
            raise ValueError(f"LSTMCell: Expected input to be 1D or 2D, got {input.dim()}D instead")
        batched = input.dim() == 2
        x = input if batched else input.unsqueeze(0)  # (B, I)
        if hx is None:
            zeros = x.new_zeros(x.shape[0], self.hidden_size)
            h, c = zeros, zeros
        else:
            h, c = hx if batched else (hx[0].unsqueeze(0), hx[1].unsqueeze(0))
        w = self.weights()
        out = cell_step(input_projection(x, w), h, c, w)
        if not batched:
            return out.h.squeeze(0), out.c.squeeze(0)
        return out.h, out.c

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        if self.layer_norm:
            s += ", layer_norm=True"
        if self.peephole:
            s += ", peephole=True"
        return s
