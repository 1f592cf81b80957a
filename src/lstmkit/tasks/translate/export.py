"""What ``lstmkit export`` writes for a translator: two graphs, run by :mod:`lstmkit.runtime.translate`
(whose NumPy greedy and beam searches, :mod:`lstmkit.runtime.decode`, call ``decoder_step`` once a step).

``encoder``: ``Seq2Seq.encode`` with the attention memory and the initial decoder state spelled out::

    src (B, S) int64 ids (0-padded), src_len (B,) int64
    -> values (B, S, D), keys (B, S, K), mask (B, S) bool    (``Attention.prepare``'s Memory)
       h, c (L, B, D), feed (B, A)                           (the initial ``DecoderState``)

``decoder_step``: ``Seq2Seq.decode_step`` (the decoder LSTM's ``step`` becomes the step graph)::

    y_prev (N,) int64, h, c (L, N, D), feed (N, A), values (N, S, D), keys (N, S, K), mask (N, S) bool
    -> logits (N, V), h_next, c_next (L, N, D), feed_next (N, A), attention (N, S)

N is B times the beam; the runtime expands and reorders the memory rows with the state. The softmax,
the banned tokens and the search itself stay in NumPy, as the torch decoders do them outside the model.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from lstmkit.export import GraphSpec
from lstmkit.nn.attention import Memory
from lstmkit.tasks.translate.model import DecoderState, Seq2Seq

ENCODER_OUT = ["values", "keys", "mask", "h", "c", "feed"]
STEP_IN = ["y_prev", "h", "c", "feed", "values", "keys", "mask"]
STEP_OUT = ["logits", "h_next", "c_next", "feed_next", "attention"]


class EncoderGraph(nn.Module):
    """``Seq2Seq.encode`` with plain tensor outputs (values, keys, mask, h, c, feed)."""

    def __init__(self, net: Seq2Seq) -> None:
        super().__init__()
        self.net = net

    def forward(self, src: Tensor, src_len: Tensor) -> tuple[Tensor, ...]:
        memory, state = self.net.encode(src, src_len)
        return (*memory, *state)


class StepGraph(nn.Module):
    """``Seq2Seq.decode_step`` with plain tensor inputs and outputs."""

    def __init__(self, net: Seq2Seq) -> None:
        super().__init__()
        self.net = net

    def forward(self, y_prev: Tensor, h: Tensor, c: Tensor, feed: Tensor, values: Tensor, keys: Tensor, mask: Tensor):
        logits, state, weights = self.net.decode_step(y_prev, DecoderState(h, c, feed), Memory(values, keys, mask))
        return logits, state.h, state.c, state.feed, weights  # (N, V), (L, N, D), (L, N, D), (N, A), (N, S)


def graphs(predictor: Any) -> list[GraphSpec]:
    net: Seq2Seq = predictor.net
    src = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])  # (B, S) <unk>s: every vocabulary has them
    src_len = torch.tensor([5, 3])  # (B,)
    with torch.no_grad():
        memory, state = net.eval().encode(src, src_len)
    y_prev = torch.tensor([predictor.tgt_codec.bos_id] * 2)  # (N,)
    batch_time = {0: "B", 1: "S"}
    enc_dynamic = {"src": batch_time, "src_len": {0: "B"}, "h": {1: "B"}, "c": {1: "B"}, "feed": {0: "B"}}
    enc_dynamic |= {name: batch_time for name in ("values", "keys", "mask")}
    n_time = {0: "N", 1: "S"}
    step_dynamic = {"y_prev": {0: "N"}, "logits": {0: "N"}, "attention": n_time}
    step_dynamic |= {name: n_time for name in ("values", "keys", "mask")}
    step_dynamic |= {name: {1: "N"} for name in ("h", "c", "h_next", "c_next")}
    step_dynamic |= {name: {0: "N"} for name in ("feed", "feed_next")}
    return [
        GraphSpec("encoder", EncoderGraph(net), (src, src_len), ["src", "src_len"], ENCODER_OUT, enc_dynamic),
        GraphSpec("decoder_step", StepGraph(net), (y_prev, *state, *memory), STEP_IN, STEP_OUT, step_dynamic),
    ]
