"""Running one layer-direction over a whole (padded) sequence on the reference path.

Everything here is time-major: T steps, B sequences. A padded batch carries a ``valid`` mask
(T, B, 1), True where step t < length_b. Past a sequence's end its state is frozen (so h_n, c_n are
the state at its last real step) and its outputs are zero. The reverse direction runs the same loop
on each sequence reversed within its own length (:func:`reverse_padded`), so it starts at the real
end of every sequence, not at the padding.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from .cell import CellWeights, Gates, cell_step
from .dropout import Keep, keep_steps, zoneout


class DirectionOut(NamedTuple):
    """Result of one layer-direction: outputs (T, B, H_out), final states, optional gates (T, B, H)."""

    y: Tensor
    h_n: Tensor  # (B, H_out)
    c_n: Tensor  # (B, H)
    gates: Gates | None  # time-major here; the layer transposes to (B, T, H)


def check_lengths(lengths: Tensor | None, steps: int, batch: int) -> Tensor | None:
    """``lengths`` (B,) checked against the input's T steps and B sequences; None when absent or when
    every sequence is full length (then no masking is needed)."""
    if lengths is None:
        return None
    lengths = torch.as_tensor(lengths)
    if lengths.dim() != 1 or lengths.shape[0] != batch or lengths.is_floating_point():
        raise ValueError(f"lengths must be a 1-D integer tensor of size B={batch}, got shape {tuple(lengths.shape)}")
    lo, hi = int(lengths.min()), int(lengths.max())
    if lo < 1 or hi > steps:
        raise ValueError(f"lengths must lie in [1, T={steps}], got min {lo}, max {hi}")
    return None if lo == steps else lengths


def valid_mask(lengths: Tensor, steps: int) -> Tensor:
    """(T, B, 1) bool, True where t < lengths[b]."""
    t = torch.arange(steps, device=lengths.device).unsqueeze(1)  # (T, 1)
    return (t < lengths.unsqueeze(0)).unsqueeze(-1)  # (T, B, 1)


def reverse_index(lengths: Tensor, steps: int) -> Tensor:
    """(T, B) long: position t of sequence b reversed within its length; padding maps to itself."""
    t = torch.arange(steps, device=lengths.device).unsqueeze(1)  # (T, 1)
    n = lengths.unsqueeze(0)  # (1, B)
    return torch.where(t < n, n - 1 - t, t)  # (T, B)


def reverse_padded(x: Tensor, rev_idx: Tensor | None) -> Tensor:
    """Reverse time-major x (T, B, ...) per sequence (``rev_idx`` from :func:`reverse_index`), or
    entirely (``rev_idx`` None, all sequences full length). Its own inverse."""
    if rev_idx is None:
        return x.flip(0)
    idx = rev_idx.view(*rev_idx.shape, *([1] * (x.dim() - 2))).expand_as(x)  # (T, B, ...)
    return x.gather(0, idx)


def run_reference(
    xg: Tensor,
    h0: Tensor,
    c0: Tensor,
    w: CellWeights,
    *,
    valid: Tensor | None = None,
    h_mask: Tensor | None = None,
    keep_c: Keep = None,
    keep_h: Keep = None,
    record: bool = False,
) -> DirectionOut:
    """The recurrence of one layer-direction, one :func:`cell_step` per time step.

    Args:
        xg: (T, B, 4H) input pre-activations of all steps (:func:`cell.input_projection`).
        h0, c0: (B, H_out), (B, H) initial state.
        valid: (T, B, 1) bool, or None when every sequence has length T.
        h_mask: (B, H_out) variational mask on the recurrent h (same at every step), or None.
        keep_c, keep_h: zoneout keep factors ((T, B, N) masks or a float), or None.
        record: also return the gates.
    """
    steps = xg.shape[0]
    w_hh_t = w.w_hh.t()  # (H_out, 4H), reused every step
    valids = valid.unbind(0) if valid is not None else [None] * steps
    kcs, khs = keep_steps(keep_c, steps), keep_steps(keep_h, steps)
    h, c = h0, c0
    ys, rec = [], []
    for xg_t, v, kc, kh in zip(xg.unbind(0), valids, kcs, khs):  # xg_t (B, 4H)
        h_in = h if h_mask is None else h * h_mask
        s = cell_step(xg_t, h_in, c, w, w_hh_t)
        c_new = s.c if kc is None else zoneout(c, s.c, kc)
        h_new = s.h if kh is None else zoneout(h, s.h, kh)
        if v is None:
            h, c, y = h_new, c_new, h_new
        else:  # freeze the state past the end, zero output
            h, c = torch.where(v, h_new, h), torch.where(v, c_new, c)
            y = h_new * v
        ys.append(y)
        if record:
            rec.append((s.i, s.f, s.g, s.o, c_new))
    gates = None
    if record:
        stacked = [torch.stack(z) for z in zip(*rec)]  # each (T, B, H)
        if valid is not None:
            stacked = [z * valid for z in stacked]
        gates = Gates(*stacked)
    return DirectionOut(torch.stack(ys), h, c, gates)
