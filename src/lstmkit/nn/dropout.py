"""The stochastic LSTM variants: variational dropout, weight drop (DropConnect) and zoneout.

* Variational dropout (Gal & Ghahramani 2016): one Bernoulli mask per sequence, drawn once per
  forward, multiplies the inputs x_t (B, I) of every layer and the hidden state h_{t-1} (B, H_out)
  that enters the recurrence, the same mask at every step t. Kept units are scaled by 1/(1-p).
* Weight drop (Merity et al. 2017): DropConnect on the recurrent matrix, ``W_hh ⊙ M / (1-p)`` with one
  mask M (4H, H_out) per forward, shared by all steps.
* Zoneout (Krueger et al. 2016): each unit keeps its previous value with probability p, drawn anew
  at every step: ``c_t = d ⊙ c_{t-1} + (1-d) ⊙ c̃_t`` (likewise h with p_h). In eval mode d is replaced
  by its expectation p, so eval is deterministic.

In eval mode (``training=False``) every variant is deterministic: no masks, zoneout by expectation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor


def parse_zoneout(zoneout: float | tuple[float, float] | None) -> tuple[float, float]:
    """``p`` or ``(p_c, p_h)`` -> ``(p_c, p_h)``; each must lie in [0, 1)."""
    if zoneout is None:
        return (0.0, 0.0)
    pair = (float(zoneout), float(zoneout)) if isinstance(zoneout, (int, float)) else tuple(map(float, zoneout))
    if len(pair) != 2 or not all(0.0 <= p < 1.0 for p in pair):
        raise ValueError(f"zoneout must be p or (p_c, p_h) with each in [0, 1), got {zoneout!r}")
    return pair[0], pair[1]


def check_probability(name: str, p: float) -> float:
    """Validate a drop probability in [0, 1)."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
        raise ValueError(f"{name} must be a number in [0, 1), got {p!r}")
    return float(p)


def bernoulli_mask(shape: tuple[int, ...], p: float, like: Tensor) -> Tensor:
    """Inverted-dropout mask: 0 with probability p, else 1/(1-p); dtype and device of ``like``."""
    keep = torch.empty(shape, dtype=like.dtype, device=like.device).bernoulli_(1.0 - p)
    return keep.div_(1.0 - p)


def weight_drop(w_hh: Tensor, p: float, training: bool) -> Tensor:
    """DropConnect on a recurrent weight matrix (one mask per call, i.e. per forward)."""
    if not training or p == 0.0:
        return w_hh
    return F.dropout(w_hh, p, training=True)


@dataclass(frozen=True)
class ZoneoutDraw:
    """The training zoneout mask of one layer-direction, as a seed instead of a tensor.

    ``keep[t, b, j] = 1`` iff ``hash32(seed, (t * B + b) * N + j) < threshold`` (threshold = p * 2³²):
    a counter-based draw, so the compiled kernel generates each row where it needs it (in forward
    and again in backward) and never reads a (T, B, N) mask from memory, while the other paths
    materialise the identical mask with :meth:`mask`. The hash is murmur3's 32-bit finaliser over
    a scrambled counter; (t, b) are in the layer input's time order for both directions.
    """

    seed: int  # in [0, 2**31)
    p: float

    @property
    def threshold(self) -> int:
        return min(round(self.p * 2**32), 2**32 - 1)

    def mask(self, steps: int, batch: int, size: int, like: Tensor) -> Tensor:
        """The {0, 1} mask (T, B, N) in ``like``'s dtype and device."""
        x = torch.arange(steps * batch * size, dtype=torch.int64, device=like.device)
        x = _mul32(x & _M32, 0x9E3779B1) ^ self.seed
        x = _mul32(x ^ (x >> 16), 0x85EBCA6B)
        x = _mul32(x ^ (x >> 13), 0xC2B2AE35)
        x = x ^ (x >> 16)
        return (x < self.threshold).to(like.dtype).view(steps, batch, size)


_M32 = 0xFFFFFFFF


def _mul32(x: Tensor, c: int) -> Tensor:
    """``x * c mod 2³²`` for x, c < 2³² in int64 without overflow (two 16-bit halves of x)."""
    lo = (x & 0xFFFF) * c  # < 2⁴⁸
    hi = ((x >> 16) * c) & 0xFFFF  # only its low 16 bits survive the shift mod 2³²
    return (lo + (hi << 16)) & _M32


# A zoneout "keep" factor: a ZoneoutDraw (or its (T, B, N) mask) in training, the probability p in eval.
Keep = Tensor | float | ZoneoutDraw | None


def zoneout_keep(p: float, training: bool) -> Keep:
    """Zoneout "keep previous value" factor of one layer-direction: a fresh :class:`ZoneoutDraw`
    (1 with probability p, independently at every step and unit) in training, the expectation p in
    eval, None when p == 0. The seed comes from torch's default generator, so ``torch.manual_seed``
    fixes the masks."""
    if p == 0.0:
        return None
    if not training:
        return p
    return ZoneoutDraw(int(torch.randint(0, 2**31 - 1, ()).item()), p)


def keep_tensor(keep: Keep, steps: int, batch: int, size: int, like: Tensor) -> Tensor | float | None:
    """A keep factor as the reference and fused paths take it: a (T, B, N) mask or a float."""
    return keep.mask(steps, batch, size, like) if isinstance(keep, ZoneoutDraw) else keep


def zoneout(old: Tensor, new: Tensor, keep: Tensor | float) -> Tensor:
    """``keep ⊙ old + (1 - keep) ⊙ new`` (one op: lerp from new towards old)."""
    return torch.lerp(new, old, keep)


@dataclass
class ForwardNoise:
    """Every random draw of one forward pass (all None/empty when no stochastic variant is active).

    input_masks[layer]: (B, I_layer) variational mask on that layer's inputs, or None.
    h_masks[k], k = layer * D + d: (B, H_out) variational mask on the recurrent h, or None.
    keep_c[k], keep_h[k]: zoneout keep factors (see :func:`zoneout_keep`).
    """

    input_masks: list[Tensor | None] = field(default_factory=list)
    h_masks: list[Tensor | None] = field(default_factory=list)
    keep_c: list[Keep] = field(default_factory=list)
    keep_h: list[Keep] = field(default_factory=list)


def sample_noise(
    *,
    variational: float,
    zoneout_pc: float,
    zoneout_ph: float,
    training: bool,
    batch: int,
    input_sizes: list[int],
    directions: int,
    out_size: int,
    like: Tensor,
) -> ForwardNoise:
    """Draw the masks of one forward pass for every layer (``input_sizes[layer]``) and direction."""
    noise = ForwardNoise()
    use_var = training and variational > 0.0
    for in_size in input_sizes:
        noise.input_masks.append(bernoulli_mask((batch, in_size), variational, like) if use_var else None)
        for _ in range(directions):
            noise.h_masks.append(bernoulli_mask((batch, out_size), variational, like) if use_var else None)
            noise.keep_c.append(zoneout_keep(zoneout_pc, training))
            noise.keep_h.append(zoneout_keep(zoneout_ph, training))
    return noise


def keep_steps(keep: Keep, steps: int) -> list:
    """Per-step view of a keep factor: the (B, N) slices of a mask via ``unbind``, or the float."""
    if isinstance(keep, Tensor):
        return list(keep.unbind(0))
    return [keep] * steps
