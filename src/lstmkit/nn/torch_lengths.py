"""torch's own LSTM kernel (``torch._VF.lstm``) on a padded batch with lengths, without packing:
the ``"torch"`` path of :class:`lstmkit.nn.LSTM` when ``lengths`` are given."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import _VF, Tensor

from .sequence import reverse_index, reverse_padded, valid_mask

_PAD_BIG = 1.0e4  # |pre-activation| that saturates σ to exactly 0 or 1 in float16/32/64


def lstm_lengths(
    x: Tensor,
    hx: tuple[Tensor, Tensor],
    lengths: Tensor,
    flat: list[Tensor],
    *,
    num_layers: int,
    dirs: int,
    bias: bool,
    dropout: float,
    training: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    """A padded time-major batch x (T, B, I) with lengths on torch's kernel, without packing
    (packed sequences leave oneDNN for a per-step fallback whose backward is several times
    slower on CPU). Each layer-direction is one unpacked one-layer kernel call:

    * the reverse direction reads each sequence reversed within its length (padding stays at
      the end), so both directions see their real steps first;
    * a pad indicator p_t (1 at padding) is appended to the input, with a W_ih column of
      +BIG on the forget-gate rows and -BIG on the input-gate rows: at padded steps f = 1 and
      i = 0 exactly, so c stays each sequence's cell state at its last real step and the
      kernel's final c is c_n, with exactly zero gradient through the padded steps;
    * h_n is the output at step length-1; padded outputs are zeroed (so layer k+1 reads zeros
      there, and its own pad indicator keeps its state frozen too).

    ``flat``: the kernel's weights, per layer-direction W_ih (4H, I_k), W_hh (4H, H_out)[, b_ih,
    b_hh (4H,)][, W_hr (P, H)]; ``hx``: h_0 (L*D, B, H_out), c_0 (L*D, B, H). Returns the output
    (T, B, D*H_out), h_n (L*D, B, H_out) and c_n (L*D, B, H).
    """
    steps, batch = x.shape[0], x.shape[1]
    hidden = flat[0].shape[0] // 4
    lengths = lengths.to(x.device)
    valid = valid_mask(lengths, steps)  # (T, B, 1) bool
    keep = valid.to(x.dtype)
    pad = 1.0 - keep  # (T, B, 1)
    rev_idx = reverse_index(lengths, steps) if dirs == 2 else None
    last = (lengths - 1).view(1, batch, 1)
    per = len(flat) // (num_layers * dirs)
    h0, c0 = hx
    h_n, c_n = [], []
    layer_in = x * keep  # padding values never reach a gate: |z| at padded steps stays << BIG
    for layer in range(num_layers):
        xa = torch.cat([layer_in, pad], dim=-1)  # (T, B, I_l + 1)
        outs = []
        for d in range(dirs):
            k = layer * dirs + d
            ws = flat[k * per : (k + 1) * per]
            col = ws[0].new_zeros(ws[0].shape[0], 1)
            col[:hidden] = -_PAD_BIG  # input gate -> 0
            col[hidden : 2 * hidden] = _PAD_BIG  # forget gate -> 1
            w_ih = torch.cat([ws[0], col], dim=1)  # (4H, I_l + 1)
            xd = xa if d == 0 else reverse_padded(xa, rev_idx)
            out, _, c_last = _VF.lstm(
                xd, (h0[k : k + 1], c0[k : k + 1]), [w_ih, *ws[1:]], bias, 1, 0.0, training, False, False
            )  # out (T, B, H_out)
            h_n.append(out.gather(0, last.expand(1, batch, out.shape[-1]))[0])
            c_n.append(c_last[0])
            y = out * keep
            outs.append(y if d == 0 else reverse_padded(y, rev_idx))
        layer_in = outs[0] if dirs == 1 else torch.cat(outs, dim=-1)  # (T, B, D*H_out)
        if layer < num_layers - 1 and dropout > 0 and training:
            layer_in = F.dropout(layer_in, dropout, training=True)
    return layer_in, torch.stack(h_n), torch.stack(c_n)
