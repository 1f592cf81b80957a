"""What ``lstmkit export`` writes for a speech model (F features per frame, k = ``--subsample``, T' = ⌈T/k⌉,
L layers, H hidden, V CTC symbols incl. the blank, C classes):

* ``model``: the normalised features x (B, T, F) float32 as the predictor feeds them and lengths (B,)
  int64 → classify: ``logits`` (B, C); ctc: ``log_probs`` (B, T', V) and ``out_lengths`` (B,), after
  frame stacking. The runtime decodes (argmax, CTC greedy / prefix beam) as the predictor does.
* ``step`` (unidirectional CTC models only, for streaming): a chunk of stacked frames x (B, K, k·F)
  and the LSTM state h, c (L, B, H) → ``log_probs`` (B, K, V), ``h_n``, ``c_n`` (L, B, H). Chunks fed
  one after another, state carried, give the whole sequence's log-probs.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from lstmkit.export import GraphSpec


class Outputs(nn.Module):
    """The speech network as the ``model`` graph: classify returns only the logits."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor, lengths: Tensor) -> Any:
        out, out_lengths = self.net(x, lengths)  # (B, C) | (B, T', V), (B,)
        return out if self.net.mode == "classify" else (out, out_lengths)


class StepNet(nn.Module):
    """One chunk of a unidirectional CTC :class:`~lstmkit.tasks.speech.model.SpeechNet` with its state
    in and out: stacked frames x (B, K, k·F), h, c (L, B, H) → log-probs (B, K, V), h', c' (L, B, H).
    The torch predictor streams with it too (:meth:`SpeechPredictor.stream_step`)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        net: Any = self.net
        y, (h1, c1) = net.lstm(net.drop(x), (h, c))  # (B, K, H)
        return torch.log_softmax(net.head(net.drop(y)).float(), dim=-1), h1, c1


def streams(config: Any) -> bool:
    """Whether a model of ``config`` (a SpeechConfig) can stream: CTC with a unidirectional LSTM."""
    return config.mode == "ctc" and not config.lstm.bidirectional


def graphs(predictor: Any) -> list[GraphSpec]:
    cfg, net = predictor.config, predictor.model
    F, k = int(predictor.dims["input_size"]), max(1, cfg.subsample)
    x = torch.randn(2, 5, F)  # (B, T, F): T not a multiple of k, so the stacking pad is traced
    lengths = torch.tensor([5, 3])  # (B,)
    if cfg.mode == "classify":
        dynamic = {"x": {0: "B", 1: "T"}, "lengths": {0: "B"}, "logits": {0: "B"}}
        specs = [GraphSpec("model", Outputs(net), (x, lengths), ["x", "lengths"], ["logits"], dynamic)]
    else:
        dynamic = {"x": {0: "B", 1: "T"}, "lengths": {0: "B"}, "log_probs": {0: "B", 1: "T'"}, "out_lengths": {0: "B"}}
        names = ["log_probs", "out_lengths"]
        specs = [GraphSpec("model", Outputs(net), (x, lengths), ["x", "lengths"], names, dynamic)]
    if streams(cfg):
        L, H = cfg.lstm.num_layers, cfg.lstm.hidden_size
        args = (torch.randn(2, 3, k * F), torch.zeros(L, 2, H), torch.zeros(L, 2, H))
        dyn = {"x": {0: "B", 1: "K"}, "log_probs": {0: "B", 1: "K"}}
        dyn.update({name: {1: "B"} for name in ("h", "c", "h_n", "c_n")})
        specs.append(GraphSpec("step", StepNet(net), args, ["x", "h", "c"], ["log_probs", "h_n", "c_n"], dyn))
    return specs
