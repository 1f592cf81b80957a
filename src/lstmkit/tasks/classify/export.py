"""What ``lstmkit export`` writes for a classifier: one graph, ``model``: x (B, T) ids (float values for
numeric input) and lengths (B,) -> logits (B, C). The runtime applies the softmax, as the predictor does."""

from __future__ import annotations

from typing import Any

import torch

from lstmkit.export import GraphSpec


def graphs(predictor: Any) -> list[GraphSpec]:
    numeric = predictor.config.input == "numeric"
    x = torch.randn(2, 5) if numeric else torch.ones(2, 5, dtype=torch.long)  # (B, T)
    lengths = torch.tensor([5, 3])  # (B,)
    dynamic = {"x": {0: "B", 1: "T"}, "lengths": {0: "B"}, "logits": {0: "B"}}
    return [GraphSpec("model", predictor.model, (x, lengths), ["x", "lengths"], ["logits"], dynamic)]
