"""The sequence classifier: embedding -> (Bi)LSTM (lstmkit.nn) -> pooling -> dropout -> linear.

Shapes use B (batch), T (longest sequence in the batch), E (embedding size), H (hidden size),
D (directions, 1 or 2) and C (classes). Padding never reaches a result: the LSTM runs with ``lengths``
(padded outputs are zero, ``h_n`` is each sequence's state at its own last step) and every pooling
masks padded steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from lstmkit.nn import LSTM
from lstmkit.tasks.classify.config import ClassifyConfig, Pooling
from lstmkit.tasks.classify.data import ClassifyBatch  # noqa: F401  (re-exported: the batch the network reads)


def length_mask(lengths: torch.Tensor, t: int) -> torch.Tensor:
    """(B, T) bool, True at real (non-padded) steps."""
    return torch.arange(t, device=lengths.device)[None, :] < lengths.to(torch.long)[:, None]


class Pool(nn.Module):
    """Sequence -> vector pooling that ignores padding.

    * ``last``: each sequence's final state; for a BiLSTM the forward direction's last step and the
      backward direction's state after reading back to step 0 (``h_n`` of the top layer).
    * ``max`` / ``mean``: over real steps only (padded steps set to -inf / excluded from the count).
    * ``attention``: ``a_t = softmax_t(v^T tanh(W o_t))`` over real steps, result ``sum_t a_t o_t``.
    """

    def __init__(self, kind: Pooling, size: int) -> None:
        super().__init__()
        self.kind = kind
        if kind == "attention":
            self.proj = nn.Linear(size, size)
            self.score = nn.Linear(size, 1, bias=False)

    def forward(self, out: torch.Tensor, h_top: torch.Tensor, lengths: torch.Tensor, return_weights: bool = False):
        """``out`` (B, T, DH), ``h_top`` (B, DH) -> (B, DH) (and attention weights (B, T) if asked)."""
        mask = length_mask(lengths, out.size(1))  # (B, T)
        weights = None
        if self.kind == "last":
            pooled = h_top
        elif self.kind == "max":
            pooled = out.masked_fill(~mask[..., None], float("-inf")).amax(dim=1)  # (B, DH)
        elif self.kind == "mean":
            pooled = (out * mask[..., None]).sum(dim=1) / lengths.clamp(min=1).to(out)[:, None]
        else:
            scores = self.score(torch.tanh(self.proj(out))).squeeze(-1)  # (B, T)
            weights = scores.masked_fill(~mask, float("-inf")).softmax(dim=1)  # (B, T)
            pooled = torch.einsum("bt,btd->bd", weights, out)  # (B, DH)
        return (pooled, weights) if return_weights else pooled


class SequenceClassifier(nn.Module):
    """``logits = W · dropout(pool(LSTM(dropout(embed(x)))))``; x (B, T) -> logits (B, C).

    ``dims``: ``num_classes``; for text input also ``vocab_size``, ``pad_id`` and ``unk_id`` (the
    row word dropout substitutes).
    """

    def __init__(self, cfg: ClassifyConfig, dims: Mapping[str, Any]) -> None:
        super().__init__()
        self.numeric = cfg.input == "numeric"
        self.word_dropout = cfg.word_dropout
        self.pad_id, self.unk_id = int(dims.get("pad_id", 0)), dims.get("unk_id")
        if self.numeric:
            self.embed: nn.Module = nn.Linear(1, cfg.embed_size)  # one value per step -> E
        else:
            self.embed = nn.Embedding(int(dims["vocab_size"]), cfg.embed_size, padding_idx=self.pad_id)
        self.drop = nn.Dropout(cfg.lstm.dropout)
        self.lstm = LSTM(cfg.embed_size, batch_first=True, **cfg.lstm.core_kwargs())
        self.directions = cfg.lstm.directions
        self.pool = Pool(cfg.pooling, cfg.lstm.output_size)
        self.out = nn.Linear(cfg.lstm.output_size, int(dims["num_classes"]))

    def embed_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T) ids or values -> (B, T, E)."""
        if self.numeric:
            return self.embed(x.unsqueeze(-1).to(self.out.weight.dtype))  # (B, T, 1) -> (B, T, E)
        return self.embed(self.drop_words(x))

    def drop_words(self, x: torch.Tensor) -> torch.Tensor:
        """Word dropout (Iyyer et al. 2015): in training, each non-padding id becomes ``<unk>`` with
        probability ``word_dropout``, so the network learns what to do with words it has never seen."""
        if not self.training or self.word_dropout <= 0 or self.unk_id is None:
            return x
        hit = (torch.rand(x.shape, device=x.device) < self.word_dropout) & (x != self.pad_id)  # (B, T)
        return x.masked_fill(hit, int(self.unk_id))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """x (B, T), lengths (B,) -> logits (B, C)."""
        emb = self.drop(self.embed_inputs(x))  # (B, T, E)
        out, (h_n, _) = self.lstm(emb, lengths=lengths.cpu())  # out (B, T, DH); h_n (L*D, B, H)
        h_top = h_n[-self.directions :].transpose(0, 1).reshape(x.size(0), -1)  # (D, B, H) -> (B, D*H)
        return self.out(self.drop(self.pool(out, h_top, lengths)))
