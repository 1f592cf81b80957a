""":class:`SLSTM`: the sLSTM of xLSTM (Beck et al. 2024), exponential gating with a normaliser and a
stabiliser state, block-diagonal recurrent weights over heads.

Shapes (named dims): T steps, B batch, I input features, H hidden, K heads, Dh = H / K units per
head, L layers, D directions (1 or 2). Input (T, B, I), or (B, T, I) with ``batch_first``, or (T, I)
unbatched; the state is :class:`SLSTMState` ``(h, c, n, m)``, each (L*D, B, H); output (T, B, D*H).

One step of one layer-direction, units split into K heads of Dh::

    ĩ, f̃, z̃, õ = W x_t + R h_{t-1} + b          pre-activations (B, H) each; R block-diagonal
    z   = tanh(z̃)                               candidate
    o   = σ(õ)                                  output gate
    log i = ĩ                                   exponential input gate
    log f = log σ(f̃)    (forget_gate="exp": log f = f̃)
    m_t = max(log f + m_{t-1}, log i)           stabiliser state (m_t = log i where n_{t-1} = 0)
    i'  = exp(log i - m_t) ;  f' = exp(log f + m_{t-1} - m_t)      both in [0, 1]
    c_t = f' ⊙ c_{t-1} + i' ⊙ z                 cell state
    n_t = f' ⊙ n_{t-1} + i'                     normaliser state
    h_t = o ⊙ c_t / n_t                         hidden state

The stabiliser only rescales: c_t and n_t are the unstabilised sums times exp(-m_t), so h_t does
not depend on it. The initial state is zeros (h, c, n and m). Where n_{t-1} = 0 (an empty state,
as the default zeros) the forget path is left out of the max, as xLSTM's own first step does:
m_t = log i, so i' = 1, f' = 0 and n_t = 1 (with m_0 = 0 in the max instead, a very negative ĩ would
underflow i' and leave h = 0/0). From there n_t >= 1 at every step, since one of f', i' is 1.
Gradients flow through m as through the other states (``max`` splits its gradient evenly on a tie,
as ``torch.maximum`` does).

Weight packing, per layer ``l{k}`` (and ``l{k}_reverse``): ``weight_ih_l{k}`` (4H, I_k), ``bias_l{k}``
(4H,) and ``weight_hh_l{k}`` (K, 4Dh, Dh), one block R_k per head. The 4H pre-activations are packed
head by head, each head's gates i|f|z|o over its Dh units: row ``k*4Dh + g*Dh + j`` is gate g of unit
``k*Dh + j`` (with heads=1 this is the LSTM's i|f|g|o). Head k's recurrent term is ``R_k h_{t-1}[k]``
with ``h[k] = h[:, k*Dh:(k+1)*Dh]``: one batched matmul over the heads per step.

Paths (``last_path`` names the one that ran):

* ``"compiled"``: CPU float32/64 once the extension builds (the default there): one input GEMM per
  layer-direction, per step one batched matmul over the heads and one C++ pass over each row for the
  elementwise work, and a hand-written backward (``csrc/slstm_cpu.cpp``, :mod:`lstmkit.nn.slstm_fused`).
* ``"fused"``: the same recurrence in Python with the same hand-written backward (any device, the
  default where the compiled kernel cannot run).
* ``"reference"``: the equations above one step at a time (:func:`slstm_step`), autograd through all of
  it. Used for ``return_gates=True`` and whenever ``impl="reference"``.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import compiled
from .dropout import check_probability
from .sequence import check_lengths, reverse_index, reverse_padded, valid_mask
from .slstm_fused import run_compiled, run_fused

SImpl = Literal["auto", "reference", "fused", "compiled"]
SPath = Literal["reference", "fused", "compiled"]
ForgetGate = Literal["sigmoid", "exp"]


class SLSTMState(NamedTuple):
    """The recurrent state of an :class:`SLSTM`: each (L*D, B, H) for a layer stack, (B, H) per layer-direction."""

    h: Tensor  # hidden state
    c: Tensor  # cell state
    n: Tensor  # normaliser state
    m: Tensor  # stabiliser state (log scale)


class SGates(NamedTuple):
    """Per-step gate activations of one layer and direction; every field (B, T, H), batch-major.

    ``i`` and ``f`` are the stabilised gates i', f' in [0, 1] that multiply z and c_{t-1}; ``g`` is the
    candidate z = tanh(z̃) (named as the LSTM's :class:`~lstmkit.nn.Gates` field, also as ``.z``)."""

    i: Tensor  # stabilised input gate i'
    f: Tensor  # stabilised forget gate f'
    g: Tensor  # candidate z
    o: Tensor  # output gate
    c: Tensor  # cell state after the step
    n: Tensor  # normaliser state after the step
    m: Tensor  # stabiliser state after the step

    @property
    def z(self) -> Tensor:
        return self.g


class SCellWeights(NamedTuple):
    """The parameters of one layer-direction."""

    w_ih: Tensor  # (4H, I), head-major i|f|z|o
    w_hh: Tensor  # (K, 4Dh, Dh)
    bias: Tensor | None  # (4H,)


class SStepOut(NamedTuple):
    """One step: the new state and the gates, each (B, H)."""

    h: Tensor
    c: Tensor
    n: Tensor
    m: Tensor
    i: Tensor  # i'
    f: Tensor  # f'
    z: Tensor
    o: Tensor


class SDirectionOut(NamedTuple):
    """One layer-direction over a sequence: outputs (T, B, H), the final state, optional gates (T, B, H)."""

    y: Tensor
    state: SLSTMState  # each (B, H)
    gates: SGates | None


def recurrent(h: Tensor, w_hh: Tensor) -> Tensor:
    """The block-diagonal recurrent term: h (B, H), w_hh (K, 4Dh, Dh) -> (B, 4H) head-major, i.e.
    ``R_k h[k]`` for every head k, concatenated."""
    heads, four_dh, dh = w_hh.shape
    rec = torch.einsum("bkd,kgd->bkg", h.reshape(h.shape[0], heads, dh), w_hh)  # (B, K, 4Dh)
    return rec.reshape(h.shape[0], heads * four_dh)


def slstm_step(
    xg: Tensor, h: Tensor, c: Tensor, n: Tensor, m: Tensor, w_hh: Tensor, forget_gate: ForgetGate = "sigmoid"
) -> SStepOut:
    """One sLSTM step from the equations (module docstring).

    Args:
        xg: (B, 4H) input pre-activation ``W x_t + b`` of this step (head-major i|f|z|o).
        h, c, n, m: (B, H) previous state.
        w_hh: (K, 4Dh, Dh) recurrent blocks.
    """
    batch, hidden = h.shape
    heads, _, dh = w_hh.shape
    pre = (xg + recurrent(h, w_hh)).view(batch, heads, 4, dh)
    zi, zf, zz, zo = (p.reshape(batch, hidden) for p in pre.unbind(2))  # each (B, H), unit k*Dh + j
    log_f = F.logsigmoid(zf) if forget_gate == "sigmoid" else zf
    u = log_f + m  # log f + m_{t-1}
    empty = n == 0  # an empty state: the forget path is left out
    m_new = torch.where(empty, zi, torch.maximum(u, zi))  # stabiliser
    i = torch.exp(zi - m_new)  # i'
    f = torch.where(empty, 0.0, torch.exp(torch.where(empty, 0.0, u - m_new)))  # f' (no inf on the masked side)
    z = torch.tanh(zz)
    o = torch.sigmoid(zo)
    c_new = f * c + i * z
    n_new = f * n + i
    h_new = o * c_new / n_new
    return SStepOut(h_new, c_new, n_new, m_new, i, f, z, o)


def run_reference(
    xg: Tensor,
    state: SLSTMState,
    w_hh: Tensor,
    *,
    valid: Tensor | None = None,
    forget_gate: ForgetGate = "sigmoid",
    record: bool = False,
) -> SDirectionOut:
    """One layer-direction over time-major xg (T, B, 4H), one :func:`slstm_step` per step. With
    ``valid`` (T, B, 1) the state is frozen past each sequence's end and the output there is zero."""
    h, c, n, m = state
    ys, rec = [], []
    valids = valid.unbind(0) if valid is not None else [None] * xg.shape[0]
    for xg_t, v in zip(xg.unbind(0), valids):
        s = slstm_step(xg_t, h, c, n, m, w_hh, forget_gate)
        if v is None:
            h, c, n, m, y = s.h, s.c, s.n, s.m, s.h
        else:
            h, c, n, m = (torch.where(v, new, old) for new, old in ((s.h, h), (s.c, c), (s.n, n), (s.m, m)))
            y = s.h * v
        ys.append(y)
        if record:
            rec.append((s.i, s.f, s.z, s.o, s.c, s.n, s.m))
    gates = None
    if record:
        stacked = [torch.stack(z) for z in zip(*rec)]  # each (T, B, H)
        if valid is not None:
            stacked = [z * valid for z in stacked]
        gates = SGates(*stacked)
    return SDirectionOut(torch.stack(ys), SLSTMState(h, c, n, m), gates)


class SLSTM(nn.Module):
    """A stack of sLSTM layers (module docstring), with the conventions of :class:`lstmkit.nn.LSTM`.

    Args:
        input_size: I. hidden_size: H per direction (a multiple of ``heads``).
        num_layers: L; layer k > 0 reads the (concatenated, for D = 2) outputs of layer k-1.
        heads: K, the number of diagonal blocks of each recurrent matrix.
        bias: learn ``bias_l{k}`` (4H,).
        batch_first: input and output (B, T, ·) instead of (T, B, ·); the state stays (L*D, B, H).
        dropout: dropout on the outputs of every layer but the last (training only), as torch.nn.LSTM.
        bidirectional: a reverse direction per layer, run on each sequence reversed within its length.
        forget_gate: ``"sigmoid"`` (log f = log σ(f̃), the paper's default) or ``"exp"`` (log f = f̃).
        forget_bias: initial forget-gate bias: a number, or (lo, hi) spread linearly over each head's
            units (default (3, 6): long memory at the start, as xLSTM initialises it), or None for the
            uniform initialisation of the other parameters.
        impl: ``"auto"`` (compiled on CPU where it builds, else fused; reference for gates),
            ``"reference"``, ``"fused"`` or ``"compiled"``.

    ``forward(x, state=None, lengths=None, return_gates=False) -> (out, state[, gates])``; ``step`` streams.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        heads: int = 4,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        forget_gate: ForgetGate = "sigmoid",
        forget_bias: float | tuple[float, float] | None = (3.0, 6.0),
        impl: SImpl = "auto",
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        if input_size <= 0 or hidden_size <= 0 or num_layers <= 0 or heads <= 0:
            raise ValueError("input_size, hidden_size, num_layers and heads must be positive")
        if hidden_size % heads:
            raise ValueError(f"hidden_size {hidden_size} must be a multiple of heads {heads}")
        if forget_gate not in ("sigmoid", "exp"):
            raise ValueError(f"forget_gate must be sigmoid or exp, got {forget_gate!r}")
        if impl not in ("auto", "reference", "fused", "compiled"):
            raise ValueError(f"impl must be auto, reference, fused or compiled, got {impl!r}")
        if forget_bias is not None and not bias:
            raise ValueError("forget_bias needs bias=True")
        self.input_size, self.hidden_size, self.num_layers, self.heads = input_size, hidden_size, num_layers, heads
        self.bias, self.batch_first, self.bidirectional = bias, batch_first, bidirectional
        self.dropout = check_probability("dropout", dropout)
        self.forget_gate: ForgetGate = forget_gate
        self.forget_bias = tuple(forget_bias) if isinstance(forget_bias, (tuple, list)) else forget_bias
        self.impl: SImpl = impl
        self.last_path: SPath | None = None
        kw = {"device": device, "dtype": dtype}
        hd = hidden_size // heads
        for layer in range(num_layers):
            in_size = input_size if layer == 0 else hidden_size * self.num_directions
            for sfx in self._suffixes(layer):
                setattr(self, f"weight_ih_{sfx}", nn.Parameter(torch.empty(4 * hidden_size, in_size, **kw)))
                setattr(self, f"weight_hh_{sfx}", nn.Parameter(torch.empty(heads, 4 * hd, hd, **kw)))
                if bias:
                    setattr(self, f"bias_{sfx}", nn.Parameter(torch.empty(4 * hidden_size, **kw)))
                else:
                    self.register_parameter(f"bias_{sfx}", None)
        self.reset_parameters()

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def _suffixes(self, layer: int) -> list[str]:
        return [f"l{layer}" + ("_reverse" if d == 1 else "") for d in range(self.num_directions)]

    def reset_parameters(self) -> None:
        """U(-1/√H, 1/√H) for every weight and bias (torch's LSTM rule), then the forget-gate bias."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        hd = self.hidden_size // self.heads
        with torch.no_grad():
            for p in self.parameters():
                p.uniform_(-bound, bound)
            if self.forget_bias is None or not self.bias:
                return
            if isinstance(self.forget_bias, tuple):
                lo, hi = self.forget_bias
                values = torch.linspace(lo, hi, hd) if hd > 1 else torch.tensor([(lo + hi) / 2])
            else:
                values = torch.full((hd,), float(self.forget_bias))
            for layer in range(self.num_layers):
                for sfx in self._suffixes(layer):
                    b = getattr(self, f"bias_{sfx}").view(self.heads, 4, hd)
                    b[:, 1].copy_(values.to(b))

    def cell_weights(self, layer: int, direction: int) -> SCellWeights:
        sfx = f"l{layer}" + ("_reverse" if direction == 1 else "")
        return SCellWeights(
            getattr(self, f"weight_ih_{sfx}"), getattr(self, f"weight_hh_{sfx}"), getattr(self, f"bias_{sfx}")
        )

    # ----------------------------------------------------------------------------- dispatch
    def _choose_path(self, return_gates: bool, like: Tensor) -> SPath:
        if self.impl == "reference" or return_gates:
            return "reference"
        if self.impl == "compiled":
            if not self._compiled_ok(like):
                raise ValueError("impl='compiled' needs a CPU float32/64 input and a built extension")
            return "compiled"
        if self.impl == "fused":
            return "fused"
        return "compiled" if self._compiled_ok(like) else "fused"

    @staticmethod
    def _compiled_ok(like: Tensor) -> bool:
        return like.device.type == "cpu" and like.dtype in (torch.float32, torch.float64) and compiled.available()

    # ----------------------------------------------------------------------------- forward
    def forward(
        self,
        input: Tensor,
        state: tuple[Tensor, Tensor, Tensor, Tensor] | None = None,
        lengths: Tensor | None = None,
        return_gates: bool = False,
    ):
        """``out, state = slstm(x, state, lengths)``; with ``return_gates`` also a list of :class:`SGates`,
        index ``layer * D + direction``. ``lengths`` (B,): outputs past each sequence's end are zero and
        the final state is the one at its own end."""
        if input.dim() not in (2, 3):
            raise ValueError(f"SLSTM: Expected input to be 2D or 3D, got {input.dim()}D instead")
        batched = input.dim() == 3
        x = input if batched else input.unsqueeze(0 if self.batch_first else 1)
        if state is not None and not batched:
            state = SLSTMState(*(s.unsqueeze(1) for s in state))
        x_tm = x.transpose(0, 1) if self.batch_first else x  # (T, B, I)
        steps, batch = x_tm.shape[0], x_tm.shape[1]
        if x_tm.shape[2] != self.input_size:
            raise ValueError(f"SLSTM: input has {x_tm.shape[2]} features, expected input_size={self.input_size}")
        lengths = check_lengths(lengths, steps, batch)
        st = self._initial_state(state, batch, x)
        path = self._choose_path(return_gates, x)
        self.last_path = path
        out_tm, final, gates = self._run_layers(x_tm, st, lengths, path, return_gates)
        out = out_tm.transpose(0, 1).contiguous() if self.batch_first else out_tm
        if not batched:
            out = out.squeeze(0 if self.batch_first else 1)
            final = SLSTMState(*(s.squeeze(1) for s in final))
        return (out, final, gates) if return_gates else (out, final)

    def _initial_state(self, state, batch: int, like: Tensor) -> SLSTMState:
        shape = (self.num_layers * self.num_directions, batch, self.hidden_size)
        if state is None:
            zeros = like.new_zeros(shape)
            return SLSTMState(zeros, zeros, zeros, zeros)
        if len(state) != 4:
            raise ValueError("an SLSTM state is (h, c, n, m)")
        for name, s in zip("hcnm", state):
            if tuple(s.shape) != shape:
                raise RuntimeError(f"Expected state {name} of size {shape}, got {tuple(s.shape)}")
        return SLSTMState(*state)

    def _run_layers(self, x: Tensor, st: SLSTMState, lengths: Tensor | None, path: SPath, record: bool):
        """All layers and directions on time-major x (T, B, I) -> (out (T, B, D*H), final state, gates)."""
        steps = x.shape[0]
        lengths = lengths.to(x.device) if lengths is not None else None
        valid = valid_mask(lengths, steps) if lengths is not None else None  # (T, B, 1)
        rev_idx = reverse_index(lengths, steps) if lengths is not None and self.bidirectional else None
        finals: list[SLSTMState] = []
        gates: list[SGates] = []
        exp_forget = self.forget_gate == "exp"
        layer_in = x
        for layer in range(self.num_layers):
            outs = []
            for d in range(self.num_directions):
                k = layer * self.num_directions + d
                w = self.cell_weights(layer, d)
                s0 = SLSTMState(st.h[k], st.c[k], st.n[k], st.m[k])
                if path == "compiled":  # the kernel runs the reverse direction backwards in time
                    xg = F.linear(layer_in, w.w_ih, w.bias)  # (T, B, 4H)
                    y, fin = run_compiled(xg, s0, w.w_hh, valid=valid, exp_forget=exp_forget, reverse=d == 1)
                    outs.append(y)
                    finals.append(SLSTMState(*fin))
                    continue
                flip = (lambda z: z) if d == 0 else (lambda z: reverse_padded(z, rev_idx))  # noqa: E731
                xg = F.linear(flip(layer_in), w.w_ih, w.bias)
                if path == "fused":
                    y, fin = run_fused(xg, s0, w.w_hh, valid=valid, exp_forget=exp_forget)
                    res = SDirectionOut(y, SLSTMState(*fin), None)
                else:
                    res = run_reference(xg, s0, w.w_hh, valid=valid, forget_gate=self.forget_gate, record=record)
                outs.append(flip(res.y))
                finals.append(res.state)
                if record and res.gates is not None:
                    gates.append(SGates(*(flip(z).transpose(0, 1) for z in res.gates)))  # each (B, T, H)
            layer_in = outs[0] if len(outs) == 1 else torch.cat(outs, dim=-1)  # (T, B, D*H)
            if layer < self.num_layers - 1 and self.dropout > 0 and self.training:
                layer_in = F.dropout(layer_in, self.dropout, training=True)
        final = SLSTMState(*(torch.stack(z) for z in zip(*finals)))
        return layer_in, final, (gates if record else None)

    # ----------------------------------------------------------------------------- streaming
    def step(self, x_t: Tensor, state: tuple[Tensor, Tensor, Tensor, Tensor] | None = None):
        """Advance a batch by one time step (unidirectional only): x_t (B, I), state (h, c, n, m) each
        (L, B, H) or None (zeros) -> (y_t (B, H), new :class:`SLSTMState`). The equations of
        :func:`slstm_step` per layer; differentiable with grad on; ``dropout`` between layers in training."""
        if self.bidirectional:
            raise ValueError("step() needs a unidirectional SLSTM (a reverse direction cannot stream)")
        st = self._initial_state(state, x_t.shape[0], x_t)
        new: list[SStepOut] = []
        inp = x_t
        for layer in range(self.num_layers):
            w = self.cell_weights(layer, 0)
            s = slstm_step(
                F.linear(inp, w.w_ih, w.bias),
                st.h[layer],
                st.c[layer],
                st.n[layer],
                st.m[layer],
                w.w_hh,
                self.forget_gate,
            )
            new.append(s)
            inp = s.h
            if layer < self.num_layers - 1 and self.dropout > 0 and self.training:
                inp = F.dropout(inp, self.dropout, training=True)
        return new[-1].h, SLSTMState(*(torch.stack([getattr(s, k) for s in new]) for k in "hcnm"))

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, heads={self.heads}"
        for name, default in (
            ("bias", True),
            ("batch_first", False),
            ("dropout", 0.0),
            ("bidirectional", False),
            ("forget_gate", "sigmoid"),
            ("forget_bias", (3.0, 6.0)),
            ("impl", "auto"),
        ):
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)!r}"
        return s


def merge_directions(state: SLSTMState, num_layers: int) -> SLSTMState:
    """A bidirectional stack's final state (L*2, B, H) as one direction's (L, B, H), per layer the sum of
    the two directions' unstabilised states: m = max(m_fwd, m_bwd), c and n rescaled to it and added,
    h added (what a forward-only decoder can start from)."""
    h, c, n, m = (s.reshape(num_layers, 2, *s.shape[1:]) for s in state)
    m_new = m.max(dim=1).values  # (L, B, H)
    scale = torch.exp(m - m_new.unsqueeze(1))  # (L, 2, B, H), each <= 1
    return SLSTMState(h.sum(1), (c * scale).sum(1), (n * scale).sum(1), m_new)
