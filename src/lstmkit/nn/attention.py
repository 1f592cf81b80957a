"""Masked attention for encoder-decoder models: Bahdanau (additive), Luong general and Luong dot.

Given a decoder query ``q`` (B, Q) and encoder memory ``m`` (B, S, K) with a padding mask (B, S)
(True = real token), the score of source position s is

    bahdanau:  e_s = v^T tanh(W_k m_s + W_q q)          (additive; Bahdanau et al., 2015)
    general:   e_s = q^T W m_s                           (Luong et al., 2015)
    dot:       e_s = q^T m_s                             (Luong et al., 2015; needs Q == K)

then   a = softmax(e) over real positions only (padded positions get weight exactly 0)
       c = sum_s a_s m_s                                 context (B, K)

The parts that depend only on the memory (``W_k m`` for bahdanau, ``W m`` for general) are computed
once per sentence by :meth:`Attention.prepare` and reused at every decoding step.
This module imports nothing of lstmkit outside ``nn/``.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn

AttentionKind = Literal["bahdanau", "general", "dot"]
ATTENTION_KINDS: tuple[str, ...] = ("bahdanau", "general", "dot")


class Memory(NamedTuple):
    """Encoder memory prepared for attention.

    values: (B, S, K) encoder outputs the context is averaged from.
    keys:   (B, S, A) what the query is scored against (projected values, or the values for dot).
    mask:   (B, S) bool, True at real source tokens.
    """

    values: Tensor
    keys: Tensor
    mask: Tensor


def lengths_to_mask(lengths: Tensor, max_len: int | None = None) -> Tensor:
    """(B,) lengths -> (B, S) bool mask, True at positions < length."""
    s = int(lengths.max()) if max_len is None else max_len
    positions = torch.arange(s, device=lengths.device)  # (S,)
    return positions.unsqueeze(0) < lengths.to(positions.device).unsqueeze(1)  # (B, S)


def masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """Softmax over the last dim of ``scores`` (B, S) where ``mask`` (B, S) is True.

    Masked positions get exactly 0. A row with no real position returns all zeros (not NaN).
    """
    neg = torch.finfo(scores.dtype).min
    filled = scores.masked_fill(~mask, neg)  # (B, S)
    weights = torch.softmax(filled, dim=-1)
    return weights * mask.to(weights.dtype)  # exact zeros on padding (and on empty rows)


class Attention(nn.Module):
    """Global attention over encoder memory, with padding masked.

    Args:
        kind: "bahdanau" (additive), "general" (bilinear) or "dot".
        query_size: Q, size of the decoder state used as query.
        memory_size: K, size of each encoder output.
        attn_size: A, hidden size of the additive scorer (bahdanau only; default Q).
    """

    def __init__(self, kind: AttentionKind, query_size: int, memory_size: int, attn_size: int | None = None) -> None:
        super().__init__()
        if kind not in ATTENTION_KINDS:
            raise ValueError(f"attention kind {kind!r} not one of {', '.join(ATTENTION_KINDS)}")
        if kind == "dot" and query_size != memory_size:
            raise ValueError(f"dot attention needs query_size == memory_size ({query_size} != {memory_size})")
        self.kind = kind
        self.query_size = query_size
        self.memory_size = memory_size
        if kind == "bahdanau":
            a = attn_size or query_size
            self.key_proj = nn.Linear(memory_size, a, bias=False)  # W_k
            self.query_proj = nn.Linear(query_size, a, bias=True)  # W_q (+ bias)
            self.v = nn.Linear(a, 1, bias=False)
        elif kind == "general":
            self.key_proj = nn.Linear(memory_size, query_size, bias=False)  # W (applied to memory)

    def prepare(self, values: Tensor, mask: Tensor) -> Memory:
        """Precompute keys from encoder outputs ``values`` (B, S, K) and ``mask`` (B, S)."""
        if self.kind == "dot":
            keys = values  # (B, S, K)
        else:
            keys = self.key_proj(values)  # (B, S, A) or (B, S, Q)
        return Memory(values=values, keys=keys, mask=mask.bool())

    def scores(self, query: Tensor, memory: Memory) -> Tensor:
        """Unnormalised scores e (B, S) for query (B, Q)."""
        if self.kind == "bahdanau":
            q = self.query_proj(query).unsqueeze(1)  # (B, 1, A)
            return self.v(torch.tanh(memory.keys + q)).squeeze(-1)  # (B, S)
        return torch.bmm(memory.keys, query.unsqueeze(-1)).squeeze(-1)  # (B, S, Q)@(B, Q, 1) -> (B, S)

    def forward(self, query: Tensor, memory: Memory) -> tuple[Tensor, Tensor]:
        """Attend: query (B, Q) -> (context (B, K), weights (B, S)); weights are 0 on padding."""
        weights = masked_softmax(self.scores(query, memory), memory.mask)  # (B, S)
        context = torch.bmm(weights.unsqueeze(1), memory.values).squeeze(1)  # (B, 1, S)@(B, S, K) -> (B, K)
        return context, weights


def select_memory(memory: Memory, index: Tensor) -> Memory:
    """Rows ``index`` (N,) of every field: used to expand/reorder beams."""
    return Memory(*(t.index_select(0, index) for t in memory))
