"""An exponential moving average of the weights (Polyak averaging), the trainer's ``--ema DECAY``.

After every optimiser step k (k = 1, 2, ...) each trainable parameter θ has a shadow copy

    d_k      = min(decay, (1 + k) / (10 + k))
    shadow_k = d_k · shadow_{k-1} + (1 − d_k) · θ_k          shadow_0 = θ_0

the warm-up ``(1 + k) / (10 + k)`` of TensorFlow's ``ExponentialMovingAverage(num_updates=k)``
(timm's ``ModelEmaV3`` has the same): early steps, far from any minimum, are not kept for long.
Validation, the best-epoch snapshot and so the saved model use the shadow weights
(:meth:`WeightAverage.applied` swaps them in and back); the optimiser keeps stepping the raw
weights. About ``1 / (1 − decay)`` steps carry most of the average's weight. Buffers are the
model's own (not averaged).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn


class WeightAverage:
    """The shadow of ``model``'s trainable parameters (same devices and dtypes), updated by :meth:`update`."""

    def __init__(self, model: nn.Module, decay: float):
        if not 0 < decay < 1:
            raise ValueError(f"decay must be in (0, 1), not {decay}")
        self.decay = decay
        self.params: list[torch.Tensor] = [p for p in model.parameters() if p.requires_grad]
        self.shadow = [p.detach().clone() for p in self.params]
        self.updates = 0

    def rate(self) -> float:
        """d_k of the next update (the warm-up, then ``decay``)."""
        k = self.updates + 1
        return min(self.decay, (1 + k) / (10 + k))

    @torch.no_grad()
    def update(self) -> None:
        """Fold the parameters' current values into the shadow (call after each optimiser step)."""
        # s + (1 − d)(p − s) = d·s + (1 − d)·p, every tensor in one call (as torch.optim.swa_utils does)
        torch._foreach_lerp_(self.shadow, self.params, 1.0 - self.rate())
        self.updates += 1

    @torch.no_grad()
    def copy_to(self) -> None:
        """Overwrite the parameters with the shadow (for good: the raw weights are lost)."""
        for s, p in zip(self.shadow, self.params, strict=True):
            p.copy_(s)

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """The shadow in the model's parameters inside the block, the raw weights back after it."""
        with torch.no_grad():
            raw = [p.detach().clone() for p in self.params]
        self.copy_to()
        try:
            yield
        finally:
            with torch.no_grad():
                for r, p in zip(raw, self.params, strict=True):
                    p.copy_(r)

    def state_dict(self) -> dict[str, Any]:
        """The shadow (CPU copies) and the update count: what an exact resume needs."""
        return {"updates": self.updates, "shadow": [s.detach().to("cpu", copy=True) for s in self.shadow]}

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, Any]) -> None:
        shadow = state["shadow"]
        if len(shadow) != len(self.shadow) or any(a.shape != b.shape for a, b in zip(shadow, self.shadow)):
            raise ValueError("the saved weight average does not fit this model")
        for s, saved in zip(self.shadow, shadow, strict=True):
            s.copy_(saved)
        self.updates = int(state["updates"])
