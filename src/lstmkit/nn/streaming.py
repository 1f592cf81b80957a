"""The streaming step of a plain LSTM (no variant, no projection): one cell kernel per layer.

:meth:`lstmkit.nn.LSTM.step` hands plain configurations to :class:`PlainStep`. Without autograd
(``torch.no_grad()``, as generation runs) on a CPU where the compiled extension is built, a layer is
lstmkit's step: one matrix-vector product over a cached ``[W_ih | W_hh]`` (4H, I + H), then one pass
for the gates (``csrc/step_cpu.cpp``). At batch 1 a step is a read of the weights, so one pass over
them instead of two is most of the gain. Otherwise it is torch's ``_VF.lstm_cell`` (the op behind
torch.nn.LSTMCell), differentiable.

The cache is a copy of each layer's weights, rebuilt when a parameter's storage or version counter
changes (an optimizer step, ``load_state_dict``, ``.to()``). The step never builds the extension: a
plain model's first step does not wait a minute for a compiler (a variant's first use builds it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, _VF

from . import compiled

State = tuple[Tensor, Tensor]
Names = tuple[str, str, "str | None", "str | None"]  # w_ih, w_hh, b_ih, b_hh of one layer


def compiled_step_ok(x: Tensor) -> bool:
    """The compiled step runs CPU float32/64 where the extension is already built."""
    return x.is_cpu and (x.dtype is torch.float32 or x.dtype is torch.float64) and compiled.available(build=False)


class PlainStep:
    """The step of one plain module: its parameter dict (the module's own, so it always sees the
    current tensors), per-layer names, and the compiled step's weight cache."""

    def __init__(self, params: dict, names: tuple[Names, ...], hidden_size: int, stochastic: bool):
        self.params, self.names, self.hidden_size = params, names, hidden_size
        self.stochastic = stochastic  # variational dropout / weight drop: training steps go elsewhere
        self._cache: dict[int, tuple] = {}

    def __call__(self, x_t: Tensor, state: State | None, dropout: float) -> tuple[Tensor, State]:
        """x_t (B, I); state (h, c), each (L, B, H), or None -> (y (B, H), (h', c'))."""
        if state is None:
            h = c = x_t.new_zeros(len(self.names), x_t.shape[0], self.hidden_size)
        else:
            h, c = state
        fused = not torch.is_grad_enabled() and compiled_step_ok(x_t)
        if len(self.names) == 1 and fused:  # the streaming hot path: one call, states stay (1, B, H)
            y, h1, c1 = compiled.step(x_t, h, c, *self.weights(0))
            return y, (h1, c1)
        cell = self._fused_cell if fused else self._torch_cell
        hs, cs = [], []
        inp, last = x_t, len(self.names) - 1
        for layer, (h_l, c_l) in enumerate(zip(h.unbind(0), c.unbind(0))):
            inp, c1 = cell(layer, inp, h_l, c_l)
            hs.append(inp)
            cs.append(c1)
            if dropout > 0 and layer < last:
                inp = F.dropout(inp, dropout, training=True)
        return hs[-1], (torch.stack(hs), torch.stack(cs))

    def _torch_cell(self, layer: int, x: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        p, n = self.params, self.names[layer]
        return _VF.lstm_cell(x, (h, c), p[n[0]], p[n[1]], p.get(n[2]), p.get(n[3]))

    def _fused_cell(self, layer: int, x: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        h1, c1 = compiled.step(x, h, c, *self.weights(layer))[1:]
        return h1, c1

    def weights(self, layer: int) -> tuple[Tensor, Tensor | None]:
        """[W_ih | W_hh] (4H, I + H) and b_ih + b_hh (4H,) of one layer, from the cache."""
        p, n = self.params, self.names[layer]
        w_ih, w_hh, b_ih, b_hh = p[n[0]], p[n[1]], p.get(n[2]), p.get(n[3])
        key = (w_ih.data_ptr(), w_ih._version, w_hh.data_ptr(), w_hh._version)
        if b_ih is not None:
            key += (b_ih.data_ptr(), b_ih._version, b_hh.data_ptr(), b_hh._version)
        hit = self._cache.get(layer)
        if hit is None or hit[0] != key:
            with torch.no_grad():
                bias = (b_ih + b_hh) if b_ih is not None else None  # (4H,)
                hit = self._cache[layer] = (key, torch.cat([w_ih, w_hh], dim=1).contiguous(), bias)  # (4H, I + H)
        return hit[1], hit[2]
