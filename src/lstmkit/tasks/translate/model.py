"""The translation model: bidirectional LSTM encoder -> attentional LSTM decoder with input feeding.

Shapes: B batch, S source length, T target length, E embedding size (``--embed-size``), H encoder
units per direction (``--hidden-size``), D = 2H memory and decoder width, L layers, A attentional-vector
size (E when target embeddings are tied, else D), V vocabulary size.

Encoder (H per direction, so memory and decoder are both D = 2H wide):
    m = BiLSTM(dropout(Emb_src(x)))                      (B, S, D); padding gives zeros, never attended
    h_0, c_0 = tanh(W_h [h_fwd; h_bwd]), tanh(W_c [c_fwd; c_bwd])   per layer   (L, B, D)
Decoder step t (Luong et al. 2015 with input feeding; the score function is --attention):
    s_t        = LSTM([dropout(Emb_tgt(y_{t-1})); h~_{t-1}], s_{t-1})  (B, D)
    c_t, a_t   = Attention(s_t, m)                                   (B, D), (B, S)
    h~_t       = tanh(W_o [c_t; s_t])                                (B, A)
    p(y_t)     = softmax(W_out dropout(h~_t))    W_out = Emb_tgt.weight when tied     (B, V)
Training uses teacher forcing through the very same step function as decoding. Both LSTMs take the
core's variants of ``--lstm`` (layer norm, zoneout, ...); the decoder runs step by step, so its
stochastic variants (variational dropout, weight drop) draw fresh masks at every step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmkit.nn import LSTM
from lstmkit.nn.attention import Attention, Memory, lengths_to_mask
from lstmkit.tasks.translate.config import TranslateConfig
from lstmkit.tasks.translate.data import TranslateBatch  # noqa: F401  (re-exported: the batch the network reads)


class DecoderState(NamedTuple):
    """Recurrent decoder state: h, c (L, N, D) and the input-feeding vector h~ (N, A)."""

    h: Tensor
    c: Tensor
    feed: Tensor

    def select(self, index: Tensor) -> DecoderState:
        """Rows ``index`` (N',) of the batch (beam reordering)."""
        return DecoderState(
            self.h.index_select(1, index), self.c.index_select(1, index), self.feed.index_select(0, index)
        )


class Seq2Seq(nn.Module):
    """Encoder-decoder with attention; see the module docstring for the equations.

    ``dims``: ``src_vocab``, ``tgt_vocab`` and ``pad_id`` (the padding row of both embeddings).
    """

    def __init__(self, cfg: TranslateConfig, dims: Mapping[str, Any]) -> None:
        super().__init__()
        e, h, n = cfg.embed_size, cfg.lstm.hidden_size, cfg.lstm.num_layers
        d = 2 * h  # memory and decoder width
        pad = int(dims.get("pad_id", 0))
        self.num_layers = n
        self.attn_out_size = e if cfg.tie_embeddings else d  # A
        self.src_emb = nn.Embedding(int(dims["src_vocab"]), e, padding_idx=pad)
        self.tgt_emb = nn.Embedding(int(dims["tgt_vocab"]), e, padding_idx=pad)
        self.encoder = LSTM(e, batch_first=True, **cfg.lstm.core_kwargs())  # bidirectional (fixed)
        self.bridge_h = nn.Linear(d, d)
        self.bridge_c = nn.Linear(d, d)
        self.decoder = LSTM(
            e + self.attn_out_size, batch_first=True, **cfg.lstm.core_kwargs(hidden_size=d, bidirectional=False)
        )
        self.attention = Attention(cfg.attention, query_size=d, memory_size=d)
        self.combine = nn.Linear(2 * d, self.attn_out_size, bias=False)  # W_o
        self.drop = nn.Dropout(cfg.lstm.dropout)
        self.out = nn.Linear(self.attn_out_size, int(dims["tgt_vocab"]))
        if cfg.tie_embeddings:
            self.out.weight = self.tgt_emb.weight

    # ------------------------------------------------------------------------------------ encoder
    def encode(self, src: Tensor, src_len: Tensor) -> tuple[Memory, DecoderState]:
        """src (B, S) ids, src_len (B,) -> attention memory and the initial decoder state."""
        x = self.drop(self.src_emb(src))  # (B, S, E)
        out, (h_n, c_n) = self.encoder(x, lengths=src_len.cpu())  # out (B, S, D); h_n (L*2, B, H)
        mask = lengths_to_mask(src_len.to(src.device), src.size(1))  # (B, S)
        memory = self.attention.prepare(out, mask)
        b, n = src.size(0), self.num_layers
        h_cat = h_n.view(n, 2, b, -1).transpose(1, 2).reshape(n, b, -1)  # (L, 2, B, H) -> (L, B, D) = [fwd; bwd]
        c_cat = c_n.view(n, 2, b, -1).transpose(1, 2).reshape(n, b, -1)  # (L, B, D)
        feed = out.new_zeros(b, self.attn_out_size)  # (B, A)
        return memory, DecoderState(torch.tanh(self.bridge_h(h_cat)), torch.tanh(self.bridge_c(c_cat)), feed)

    # ------------------------------------------------------------------------------------ decoder
    def attend_step(self, y_prev: Tensor, state: DecoderState, memory: Memory) -> tuple[DecoderState, Tensor]:
        """One step up to the attentional vector: tokens (N,) -> (new state, weights (N, S)); h~ is state.feed."""
        x = torch.cat([self.drop(self.tgt_emb(y_prev)), state.feed], dim=-1)  # (N, E + A)
        top, (h, c) = self.decoder.step(x, (state.h, state.c))  # top (N, D); h, c (L, N, D)
        context, weights = self.attention(top, memory)  # (N, D), (N, S)
        feed = torch.tanh(self.combine(torch.cat([context, top], dim=-1)))  # (N, A)
        return DecoderState(h, c, feed), weights

    def decode_step(self, y_prev: Tensor, state: DecoderState, memory: Memory) -> tuple[Tensor, DecoderState, Tensor]:
        """One step: previous tokens (N,) -> (logits (N, V), new state, attention weights (N, S))."""
        state, weights = self.attend_step(y_prev, state, memory)
        return self.out(self.drop(state.feed)), state, weights  # logits (N, V)

    def forward(self, src: Tensor, src_len: Tensor, tgt_in: Tensor) -> Tensor:
        """Teacher forcing: tgt_in (B, T) starts with <s> -> logits (B, T, V).

        Same computation as T calls of :meth:`decode_step`, with the output layer applied once."""
        memory, state = self.encode(src, src_len)
        feeds = []
        for t in range(tgt_in.size(1)):
            state, _ = self.attend_step(tgt_in[:, t], state, memory)
            feeds.append(state.feed)  # (B, A)
        return self.out(self.drop(torch.stack(feeds, dim=1)))  # (B, T, A) -> (B, T, V)


def seq2seq_loss(logits: Tensor, tgt_out: Tensor, pad_id: int, label_smoothing: float = 0.0) -> Tensor:
    """Mean token cross-entropy over non-padding targets; logits (B, T, V), tgt_out (B, T)."""
    v = logits.size(-1)
    return F.cross_entropy(
        logits.reshape(-1, v), tgt_out.reshape(-1), ignore_index=pad_id, label_smoothing=label_smoothing
    )  # (B*T, V) vs (B*T,)
