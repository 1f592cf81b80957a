"""The speech network: features → [SpecAugment] → frame stacking → (Bi)LSTM stack → head.

Shapes (B batch, T frames, F feature dims, k = ``subsample``, T' = ⌈T / k⌉, H hidden, D = 1 or 2
directions, C classes, V = alphabet size incl. the CTC blank)::

    x (B, T, F) ──stack k frames──► (B, T', k·F) ──LSTM──► (B, T', D·H)
      classify: masked pooling (mean / max / mean‖max / last) ──► Linear ──► logits (B, C)
      ctc:      Linear ──► log_softmax ──► log-probs (B, T', V)   (CTC loss / decoding)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from lstmkit.data.audio import SpecAugmentConfig, spec_augment

Mode = Literal["classify", "ctc"]
Pooling = Literal["mean", "max", "meanmax", "last"]


@dataclass
class SpeechNetConfig:
    """Sizes of :class:`SpeechNet` (saved in config.json under ``net``)."""

    mode: Mode
    input_size: int  # F, feature dims per frame
    n_outputs: int  # C classes (classify) or V symbols incl. blank (ctc)
    hidden_size: int = 128
    num_layers: int = 2
    bidirectional: bool = True
    dropout: float = 0.1
    subsample: int = 2
    pooling: Pooling = "meanmax"
    specaugment: bool = False
    augment: SpecAugmentConfig = field(default_factory=SpecAugmentConfig)

    def __post_init__(self) -> None:
        if isinstance(self.augment, dict):
            self.augment = SpecAugmentConfig(**self.augment)


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
    """(Bi)LSTM over acoustic frames with a classification or a CTC head (see module doc)."""

    def __init__(self, cfg: SpeechNetConfig):
        super().__init__()
        from lstmkit.nn import LSTM

        self.cfg = cfg
        self.lstm = LSTM(
            cfg.input_size * max(1, cfg.subsample),
            cfg.hidden_size,
            num_layers=cfg.num_layers,
            batch_first=True,
            dropout=cfg.dropout if cfg.num_layers > 1 else 0.0,
            bidirectional=cfg.bidirectional,
        )
        d_out = cfg.hidden_size * (2 if cfg.bidirectional else 1)
        d_head = d_out * (2 if cfg.mode == "classify" and cfg.pooling == "meanmax" else 1)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(d_head, cfg.n_outputs)

    def encode(self, x: torch.Tensor, lengths: torch.Tensor, return_gates: bool = False):
        """x (B, T, F), lengths (B,) → LSTM outputs (B, T', D·H), lengths (B,) [, gates]."""
        if self.training and self.cfg.specaugment:
            x = spec_augment(x, lengths, self.cfg.augment)
        x, lengths = stack_frames(x, lengths, self.cfg.subsample)  # (B, T', k·F)
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
        if self.cfg.mode == "ctc":
            return torch.log_softmax(self.head(out).float(), dim=-1), lengths  # (B, T', V)
        return self.head(self.pool(out, lengths)), lengths  # (B, C)

    def pool(self, out: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Masked pooling over time: (B, T', E) → (B, E) (or (B, 2E) for meanmax)."""
        mask = time_mask(lengths.to(out.device), out.shape[1]).unsqueeze(-1)  # (B, T', 1)
        mean = (out * mask).sum(1) / mask.sum(1).clamp(min=1)  # (B, E)
        if self.cfg.pooling == "mean":
            return mean
        if self.cfg.pooling == "last":  # last real step forward, first step backward direction
            idx = (lengths.to(out.device) - 1).clamp(min=0).view(-1, 1, 1).expand(-1, 1, out.shape[2])
            last = out.gather(1, idx).squeeze(1)  # (B, E)
            if self.cfg.bidirectional:
                H = self.cfg.hidden_size
                last = torch.cat([last[:, :H], out[:, 0, H:]], dim=-1)
            return last
        mx = out.masked_fill(~mask, float("-inf")).amax(1)  # (B, E)
        return mx if self.cfg.pooling == "max" else torch.cat([mean, mx], dim=-1)  # (B, 2E)
