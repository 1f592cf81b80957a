"""What ``lstmkit export`` writes for a language model: two graphs over the same weights.

* ``model``: tokens (B, T) int64 and the state -> log-probabilities (B, T, V) of the next token after
  each position, and the state after the last;
* ``step``: token (B,) int64 and the state -> log-probabilities (B, V) and the new state (each layer's
  ``lstmkit.nn.LSTM.step``: one token costs one cell update per layer).

The state: when every layer has the same sizes, ``h`` (L, B, H) and ``c`` (L, B, H_c) in, ``h_n`` and
``c_n`` out (layer l is row l); otherwise (tied weights make the top layer E wide) one pair per layer,
``h_0, c_0, h_1, c_1, ...`` (1, B, H_l) in and ``h_n_0, c_n_0, ...`` out. :func:`state_names` gives
the names, ``extras["stacked"]`` the layout. Zeros are the initial state. The log-probabilities are the
model's ``log_probs`` (the full softmax or the adaptive one), so the runtime needs no softmax of its own.
"""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import nn

from lstmkit.export import GraphSpec
from lstmkit.nn import LSTM
from lstmkit.tasks.lm.model import LanguageModel, LayerState


def layers(model: LanguageModel) -> list[LSTM]:
    """The stack's single-layer LSTMs, bottom first."""
    return [cast(LSTM, m) for m in model.layers]


def stacked(model: LanguageModel) -> bool:
    """True when every layer's h and c sizes are the same (the state is then two (L, B, H) tensors)."""
    return len({(m.out_size, m.hidden_size) for m in layers(model)}) == 1


def state_names(n_layers: int, stack: bool, out: bool = False) -> list[str]:
    """The state's input names (``out``: output names) in graph order."""
    suffix = "_n" if out else ""
    if stack:
        return [f"h{suffix}", f"c{suffix}"]
    return [f"{k}{suffix}_{l}" for l in range(n_layers) for k in ("h", "c")]


def _unpack(state: tuple[torch.Tensor, ...], stack: bool, n_layers: int) -> list[LayerState]:
    if stack:
        h, c = state  # (L, B, H)
        return [(h[l : l + 1], c[l : l + 1]) for l in range(n_layers)]
    return [(state[2 * l], state[2 * l + 1]) for l in range(n_layers)]


def _pack(state: list[LayerState], stack: bool) -> tuple[torch.Tensor, ...]:
    if stack:
        return torch.cat([h for h, _ in state]), torch.cat([c for _, c in state])  # (L, B, H)
    return tuple(t for hc in state for t in hc)


def log_probs(model: LanguageModel, hidden: torch.Tensor) -> torch.Tensor:
    """``model.log_probs`` (N, H_top) -> (N, V), the adaptive softmax assembled with ``cat`` (the same
    numbers as ``AdaptiveLogSoftmaxWithLoss.log_prob``, without its in-place writes into a new tensor)."""
    if model.kind != "adaptive":
        return model.log_probs(hidden)
    ada = model.adaptive
    head = nn.functional.log_softmax(ada.head(hidden.float()), dim=1)  # (N, shortlist + clusters)
    parts = [head[:, : ada.shortlist_size]]
    for i, tail in enumerate(ada.tail):
        cluster = nn.functional.log_softmax(tail(hidden.float()), dim=1)  # (N, cluster size)
        parts.append(cluster + head[:, ada.shortlist_size + i].unsqueeze(1))
    return torch.cat(parts, dim=1)


class SequenceGraph(nn.Module):
    """tokens (B, T), state -> (log-probs (B, T, V), state after the last position)."""

    def __init__(self, model: LanguageModel) -> None:
        super().__init__()
        self.model, self.stack, self.n = model, stacked(model), len(model.layers)

    def forward(self, tokens: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(tokens, _unpack(state, self.stack, self.n))
        hidden = out.hidden  # (B, T, H_top)
        logp = log_probs(self.model, hidden.reshape(-1, hidden.size(-1)))  # (B*T, V)
        return (logp.reshape(tokens.size(0), tokens.size(1), -1), *_pack(out.state, self.stack))


class StepGraph(nn.Module):
    """token (B,), state -> (log-probs (B, V), new state)."""

    def __init__(self, model: LanguageModel) -> None:
        super().__init__()
        self.model, self.stack, self.n = model, stacked(model), len(model.layers)

    def forward(self, token: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        h = self.model.embed(token)  # (B, E)
        new: list[LayerState] = []
        for lstm, hc in zip(layers(self.model), _unpack(state, self.stack, self.n)):
            h, hc = lstm.step(h, hc)  # (B, H_l); h, c (1, B, H_l)
            new.append(hc)
        return (log_probs(self.model, h), *_pack(new, self.stack))


def _example_state(model: LanguageModel, batch: int) -> tuple[torch.Tensor, ...]:
    zeros = [(torch.zeros(1, batch, m.out_size), torch.zeros(1, batch, m.hidden_size)) for m in layers(model)]
    return _pack(zeros, stacked(model))


def graphs(predictor: Any) -> list[GraphSpec]:
    model: LanguageModel = predictor.model
    stack, n = stacked(model), len(model.layers)
    ins, outs = state_names(n, stack), state_names(n, stack, out=True)
    state = _example_state(model, 2)
    axes = {name: {1: "B"} for name in ins + outs}
    seq_axes = {"tokens": {0: "B", 1: "T"}, "log_probs": {0: "B", 1: "T"}, **axes}
    step_axes = {"token": {0: "B"}, "log_probs": {0: "B"}, **axes}
    tokens = torch.ones(2, 5, dtype=torch.long)  # (B, T)
    token = torch.ones(2, dtype=torch.long)  # (B,)
    return [
        GraphSpec("model", SequenceGraph(model), (tokens, *state), ["tokens", *ins], ["log_probs", *outs], seq_axes),
        GraphSpec("step", StepGraph(model), (token, *state), ["token", *ins], ["log_probs", *outs], step_axes),
    ]


def extras(predictor: Any) -> dict[str, Any]:
    """The state's layout: ``stacked`` (bool) and each layer's ``sizes`` [h, c]."""
    model: LanguageModel = predictor.model
    return {"stacked": stacked(model), "sizes": [[m.out_size, m.hidden_size] for m in layers(model)]}
