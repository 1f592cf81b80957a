"""The language model: embedding → stacked LSTM (lstmkit.nn) → softmax (full or adaptive), AWD-style.

Shapes: B (rows of the batchified stream), T (BPTT steps), V (vocabulary), E (embedding size),
H (``--hidden-size``, the inner layers), H_l (layer l's output size: E for the top layer when weights are
tied, else H).

Regularisation, after AWD-LSTM (Merity et al. 2018), each off at 0:

* ``dropout_emb`` (embedding dropout): whole rows of the embedding matrix are dropped, i.e. every
  occurrence of a word in the batch, ``E' = E ⊙ m / (1 - p)``, ``m ~ Bernoulli(1 - p)^(V×1)``;
* locked (variational) dropout, one mask (B, 1, N) per window shared by all T steps, at the stack's three
  places: on the embeddings, between LSTM layers and on the top layer's output. Each rate is ``--dropout``
  unless ``dropout_in`` / ``dropout_hidden`` / ``dropout_out`` override it (``LMConfig.rates``);
* the core's variants from the ``lstm`` section, e.g. ``weight_drop`` (DropConnect on each layer's W_hh),
  ``variational_dropout``, ``zoneout``, ``layer_norm``;
* ``alpha`` (AR) ``* mean(dropped_top_output²)`` and ``beta`` (TAR) ``* mean((h_t - h_{t-1})²)``
  are added to the training loss (``task.CarriedState``).

Each layer is its own single-layer ``lstmkit.nn.LSTM`` so that sizes may differ (tied weights need the top
layer's output size E) and locked dropout sits between layers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, NamedTuple

import torch
from torch import nn

from lstmkit.nn import LSTM
from lstmkit.tasks.lm.config import LMConfig

LayerState = tuple[torch.Tensor, torch.Tensor]  # h (1, B, H_l), c (1, B, H_l)


def resolved_softmax(cfg: LMConfig, vocab_size: int) -> Literal["full", "adaptive"]:
    """``auto``: adaptive for vocabularies over 10k tokens unless weights are tied."""
    if cfg.softmax != "auto":
        return cfg.softmax
    return "adaptive" if vocab_size > 10_000 and not cfg.tie_weights else "full"


def resolved_cutoffs(cfg: LMConfig, vocab_size: int) -> list[int]:
    """Cluster boundaries for the adaptive softmax (ids are frequency-ordered by Vocab.build)."""
    if cfg.cutoffs:
        return list(cfg.cutoffs)
    cuts = [c for c in (2_000, 10_000, 50_000) if c < vocab_size - 1]
    return cuts or [max(1, vocab_size // 2)]


class LMOutput(NamedTuple):
    """``hidden`` (B, T, H_top) after output dropout; ``raw`` (B, T, H_top) before it; the new state."""

    hidden: torch.Tensor
    raw: torch.Tensor
    state: list[LayerState]


def locked_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """One mask per sequence shared by all steps: x (B, T, N) * m (B, 1, N) / (1 - p)."""
    if not training or p == 0.0:
        return x
    m = torch.empty(x.size(0), 1, x.size(2), dtype=x.dtype, device=x.device).bernoulli_(1 - p) / (1 - p)
    return x * m


def embedding_dropout(embed: nn.Embedding, ids: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Drop whole words: row v of the (V, E) matrix is zeroed with probability p (kept rows scaled by
    1/(1-p)), i.e. every occurrence of a dropped word in the batch. Only the rows used are touched:
    ``embed(ids) * m[ids]`` with ``m`` (V, 1)."""
    if not training or p == 0.0:
        return embed(ids)
    w = embed.weight
    mask = torch.empty(w.size(0), 1, dtype=w.dtype, device=w.device).bernoulli_(1 - p) / (1 - p)  # (V, 1)
    return embed(ids) * mask[ids]  # (B, T, E)


class LanguageModel(nn.Module):
    """``p(w_{t+1} | w_≤t) = softmax(W h_t)`` with h_t from a stack of LSTM layers (state carried by the caller).

    Built from the config and ``dims = {"vocab_size": V}``, the same way after training and at load time.
    """

    def __init__(self, cfg: LMConfig, dims: Mapping[str, Any]) -> None:
        super().__init__()
        v, e, h, n = int(dims["vocab_size"]), cfg.embed_size, cfg.lstm.hidden_size, cfg.lstm.num_layers
        self.vocab_size = v
        self.p_in, self.p_hidden, self.p_out = cfg.rates()
        self.p_emb = cfg.dropout_emb
        self.embed = nn.Embedding(v, e)
        sizes = [h] * (n - 1) + [e if cfg.tie_weights else h]
        ins = [e] + sizes[:-1]
        self.layers = nn.ModuleList(
            LSTM(input_size=i, batch_first=True, **cfg.lstm.core_kwargs(hidden_size=o, num_layers=1))
            for i, o in zip(ins, sizes)
        )
        self.top_size = sizes[-1]
        self.kind = resolved_softmax(cfg, v)
        if self.kind == "adaptive":
            if cfg.tie_weights:
                raise ValueError("--tie-weights needs the full softmax (--softmax full or auto)")
            self.adaptive = nn.AdaptiveLogSoftmaxWithLoss(self.top_size, v, resolved_cutoffs(cfg, v), div_value=4.0)
        else:
            self.decoder = nn.Linear(self.top_size, v)
            if cfg.tie_weights:
                self.decoder.weight = self.embed.weight  # (V, E) shared
        nn.init.uniform_(self.embed.weight, -0.1, 0.1)

    def forward(self, x: torch.Tensor, state: list[LayerState] | None = None) -> LMOutput:
        """x (B, T) ids -> LMOutput; ``state`` from the previous batch (None: zeros)."""
        training = self.training
        h = embedding_dropout(self.embed, x, self.p_emb, training)  # (B, T, E)
        h = locked_dropout(h, self.p_in, training)
        new_state: list[LayerState] = []
        for l, lstm in enumerate(self.layers):
            h, hc = lstm(h, None if state is None else state[l])  # (B, T, H_l)
            new_state.append(hc)
            if l < len(self.layers) - 1:
                h = locked_dropout(h, self.p_hidden, training)
        return LMOutput(locked_dropout(h, self.p_out, training), h, new_state)

    def nll(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Summed negative log-likelihood (nats) of ``targets`` (B, T) given ``hidden`` (B, T, H_top)."""
        flat_h = hidden.reshape(-1, hidden.size(-1))  # (B*T, H_top)
        flat_y = targets.reshape(-1)  # (B*T,)
        if self.kind == "adaptive":
            return -self.adaptive(flat_h.float(), flat_y).output.sum()
        logits = self.decoder(flat_h).float()  # (B*T, V)
        return nn.functional.cross_entropy(logits, flat_y, reduction="sum")

    def log_probs(self, hidden: torch.Tensor) -> torch.Tensor:
        """(N, H_top) -> (N, V) log-probabilities over the whole vocabulary."""
        if self.kind == "adaptive":
            return self.adaptive.log_prob(hidden.float())
        return self.decoder(hidden).float().log_softmax(-1)

    def step(self, token: torch.Tensor, state: list[LayerState] | None) -> tuple[torch.Tensor, list[LayerState]]:
        """One token per row: ``token`` (B,) -> (log-probs of the next token (B, V), new state).

        Advances each layer's ``lstmkit.nn.LSTM.step`` once: the cost does not grow with the prefix.
        """
        h = self.embed(token)  # (B, E)
        new_state: list[LayerState] = []
        for l, lstm in enumerate(self.layers):
            assert isinstance(lstm, LSTM)
            h, hc = lstm.step(h, None if state is None else state[l])  # (B, H_l); h, c (1, B, H_l)
            new_state.append(hc)
        return self.log_probs(h), new_state


def detach_state(state: list[LayerState] | None) -> list[LayerState] | None:
    """Cut the graph between BPTT windows (the values are kept)."""
    if state is None:
        return None
    return [(h.detach(), c.detach()) for h, c in state]
