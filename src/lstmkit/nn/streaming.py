"""The streaming step of :meth:`lstmkit.nn.LSTM.step`: one cell kernel per layer for a plain LSTM
(no variant, no projection), the gate equations for the others (:func:`variant_step`).

:meth:`lstmkit.nn.LSTM.step` hands plain configurations to :class:`PlainStep`. Without autograd
(``torch.no_grad()``, as generation runs) on a CPU where the compiled extension is built, a layer is
lstmkit's step (``csrc/step_cpu.cpp``): one read of a cached ``[W_ih | W_hh]`` laid out in blocks of
16 hidden units, each block's gate pre-activations summed in vector registers and its units' c' and
h' finished by the thread that computed them, every thread on the same blocks at every step. At
batch 1 a step is a read of the weights, so one pass over them (not two, and not a GEMV then a gate
pass) is most of the gain. Otherwise it is torch's ``_VF.lstm_cell`` (the op behind
torch.nn.LSTMCell), differentiable.

The cache is a copy of each layer's weights, rebuilt when a parameter's storage or version counter
changes (an optimizer step, ``load_state_dict``, ``.to()``). The step never builds the extension: a
plain model's first step does not wait a minute for a compiler (a variant's first use builds it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import _VF, Tensor

from . import compiled
from .cell import cell_step, fast_step, input_projection
from .dropout import keep_tensor, zoneout

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

    @classmethod
    def of(cls, lstm) -> PlainStep | None:
        """The step of an :class:`~lstmkit.nn.LSTM` whose configuration is plain (unidirectional, no
        projection, no variant but the stochastic ones, which only training steps apply), or None."""
        if lstm.bidirectional or lstm.proj_size or lstm.layer_norm or lstm.peephole or any(lstm.zoneout):
            return None
        names: list[Names] = []
        for k in range(lstm.num_layers):
            b_ih, b_hh = (f"bias_ih_l{k}", f"bias_hh_l{k}") if lstm.bias else (None, None)
            names.append((f"weight_ih_l{k}", f"weight_hh_l{k}", b_ih, b_hh))
        stochastic = lstm.variational_dropout > 0 or lstm.weight_drop > 0
        return cls(lstm._parameters, tuple(names), lstm.hidden_size, stochastic)

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
        """One layer's [W_ih | W_hh] and b_ih + b_hh in the step's unit-blocked layout
        (:func:`compiled.pack`: (blocks, I + H, 4, 16) and (blocks, 4, 16)), from the cache."""
        p, n = self.params, self.names[layer]
        w_ih, w_hh, b_ih, b_hh = p[n[0]], p[n[1]], p.get(n[2]), p.get(n[3])
        key: tuple[int, ...] = (w_ih.data_ptr(), w_ih._version, w_hh.data_ptr(), w_hh._version)
        if b_ih is not None and b_hh is not None:
            key += (b_ih.data_ptr(), b_ih._version, b_hh.data_ptr(), b_hh._version)
        hit = self._cache.get(layer)
        if hit is None or hit[0] != key:
            hit = self._cache[layer] = (key, *compiled.pack(w_ih, w_hh, b_ih, b_hh))  # blocked weights, bias
        return hit[1], hit[2]


def variant_step(lstm, x_t: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, State]:
    """One step of an :class:`~lstmkit.nn.LSTM` that :class:`PlainStep` does not take (a variant, a
    projection, or stochastic masks in training): the gate equations of :func:`cell_step` per layer,
    masks drawn afresh at every call. x_t (B, I); h (L, B, H_out), c (L, B, H) -> (y, (h', c'))."""
    noise = lstm._sample_noise(x_t.shape[0], x_t)
    plain = lstm.proj_size == 0 and lstm.torch_computable()  # torch's cell kernel has no projection
    hs, cs = [], []
    inp = x_t
    for layer in range(lstm.num_layers):
        w = lstm.cell_weights(layer, 0, lstm.training)
        if plain:
            h1, c1 = fast_step(inp, h[layer], c[layer], w)
        else:
            if noise.input_masks[layer] is not None:
                inp = inp * noise.input_masks[layer]
            h_in = h[layer] if noise.h_masks[layer] is None else h[layer] * noise.h_masks[layer]
            s = cell_step(input_projection(inp, w), h_in, c[layer], w)
            kc, kh = (
                keep_tensor(keep, 1, x_t.shape[0], n, x_t)
                for keep, n in ((noise.keep_c[layer], lstm.hidden_size), (noise.keep_h[layer], lstm.out_size))
            )
            c1 = s.c if kc is None else zoneout(c[layer], s.c, kc[0] if isinstance(kc, Tensor) else kc)
            h1 = s.h if kh is None else zoneout(h[layer], s.h, kh[0] if isinstance(kh, Tensor) else kh)
        hs.append(h1)
        cs.append(c1)
        inp = h1
        if layer < lstm.num_layers - 1 and lstm.dropout > 0 and lstm.training:
            inp = F.dropout(inp, lstm.dropout, training=True)
    return hs[-1], (torch.stack(hs), torch.stack(cs))
