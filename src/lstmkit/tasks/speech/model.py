"""The speech network: features → [SpecAugment] → frame stacking → dropout → (Bi)LSTM stack → dropout → head.

Shapes (B batch, T frames, F feature dims, k = ``subsample``, T' = ⌈T / k⌉, H hidden, D = 1 or 2
directions, C classes, V = alphabet size incl. the CTC blank)::

    x (B, T, F) ──stack k frames──► (B, T', k·F) ──LSTM──► (B, T', D·H)
      classify: masked pooling (mean / max / mean‖max / last) ──► Linear ──► logits (B, C)
      ctc:      Linear ──► log_softmax ──► log-probs (B, T', V)   (CTC loss / decoding)

``--dropout`` p acts on the stacked frames, between LSTM layers and on the LSTM's outputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from lstmkit.data.audio import spec_augment
from lstmkit.nn import LSTM
from lstmkit.tasks.speech.config import SpeechConfig
from lstmkit.tasks.speech.data import augment_config


def stack_frames(x: torch.Tensor, lengths: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenate every k consecutive frames: (B, T, F) → (B, ⌈T/k⌉, k·F); lengths → ⌈len/k⌉."""
    if k <= 1:
        return x, lengths
    B, T, F = x.shape
    pad = (-T) % k
    if pad:
        x = torch.cat([x, x.new_zeros(B, pad, F)], dim=1)  # (B, T + pad, F)
    x = x.reshape(B, (T + pad) // k, k * F)  # (B, T', k·F)
    return x, torch.div(lengths + k - 1, k, rounding_mode="floor")


def time_mask(lengths: torch.Tensor, T: int) -> torch.Tensor:
    """(B,) lengths → (B, T) bool, True at real frames."""
    return torch.arange(T, device=lengths.device).view(1, T) < lengths.view(-1, 1)


class SpeechNet(nn.Module):
    """(Bi)LSTM over acoustic frames with a classification or a CTC head (see module doc).

    ``dims``: ``input_size`` (F) and ``num_outputs`` (C classes, or V symbols incl. the blank).
    """

    def __init__(self, cfg: SpeechConfig, dims: Mapping[str, Any]):
        super().__init__()
        self.mode, self.pooling, self.subsample = cfg.mode, cfg.pooling, max(1, cfg.subsample)
        self.augment = augment_config(cfg.augment) if cfg.augment.specaugment else None
        self.hidden_size, self.bidirectional = cfg.lstm.hidden_size, cfg.lstm.bidirectional
        self.lstm = LSTM(int(dims["input_size"]) * self.subsample, batch_first=True, **cfg.lstm.core_kwargs())
        d_out = cfg.lstm.output_size
        d_head = d_out * (2 if cfg.mode == "classify" and cfg.pooling == "meanmax" else 1)
        self.drop = nn.Dropout(cfg.lstm.dropout)
        self.head = nn.Linear(d_head, int(dims["num_outputs"]))

    def encode(self, x: torch.Tensor, lengths: torch.Tensor, return_gates: bool = False):
        """x (B, T, F), lengths (B,) → LSTM outputs (B, T', D·H), lengths (B,) [, gates]."""
        if self.training and self.augment is not None:
            x = spec_augment(x, lengths, self.augment)
        x, lengths = stack_frames(x, lengths, self.subsample)  # (B, T', k·F)
        x = self.drop(x)
        lengths_cpu = lengths.to("cpu")
        if return_gates:
            out, _, gates = self.lstm(x, lengths=lengths_cpu, return_gates=True)  # (B, T', D·H)
            return out, lengths, gates
        out, _ = self.lstm(x, lengths=lengths_cpu)  # (B, T', D·H)
        return out, lengths

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """classify: (logits (B, C), lengths'); ctc: (log-probs (B, T', V), lengths' (B,))."""
        out, lengths = self.encode(x, lengths)
        out = self.drop(out)
        if self.mode == "ctc":
            return torch.log_softmax(self.head(out).float(), dim=-1), lengths  # (B, T', V)
        return self.head(self.pool(out, lengths)), lengths  # (B, C)

    def pool(self, out: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Masked pooling over time: (B, T', E) → (B, E) (or (B, 2E) for meanmax)."""
        mask = time_mask(lengths.to(out.device), out.shape[1]).unsqueeze(-1)  # (B, T', 1)
        mean = (out * mask).sum(1) / mask.sum(1).clamp(min=1)  # (B, E)
        if self.pooling == "mean":
            return mean
        if self.pooling == "last":  # last real step forward, first step backward direction
            idx = (lengths.to(out.device) - 1).clamp(min=0).view(-1, 1, 1).expand(-1, 1, out.shape[2])
            last = out.gather(1, idx).squeeze(1)  # (B, E)
            if self.bidirectional:
                H = self.hidden_size
                last = torch.cat([last[:, :H], out[:, 0, H:]], dim=-1)  # (B, 2H)
            return last
        mx = out.masked_fill(~mask, float("-inf")).amax(1)  # (B, E)
        return mx if self.pooling == "max" else torch.cat([mean, mx], dim=-1)  # (B, 2E)
