"""The BiLSTM-CRF tagger (Lample et al. 2016; Ma & Hovy 2016).

Dims: B sentences, T tokens, U distinct words of the batch, L characters, K tags.

    word vectors   E_w[words]                               (B, T, Dw)       Dw = --embed-size
    char features  CharBiLSTM or CharCNN over each word     (U, C) -> gathered to (B, T, C)
    casing vectors E_c[casing]                              (B, T, Dc)       Dc = --casing-dim
    x = dropout([word; char; casing])                       (B, T, Dw + C + Dc)
    h = BiLSTM(x, lengths)                                  (B, T, 2H)       H = --hidden-size
    emissions = W dropout(h) + b                            (B, T, K)
    loss = -log p_CRF(tags | emissions) per sentence (or token cross-entropy with ``crf=False``)

The network is built from the config and ``dims`` (``vocab_size``, ``char_vocab_size``, ``tags``:
the model's tag names, id = index, and ``scheme``: IOBES, IOB2 or none, whose transition constraints
the CRF keeps).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmkit.nn import LSTM
from lstmkit.nn.crf import CRF, allowed_transitions
from lstmkit.tasks.tag.config import CharEncoderKind, TagConfig
from lstmkit.tasks.tag.data import CASINGS, TagBatch

_OLD_KEY = re.compile(r"(fwd|bwd)\.(\d+)\.(\w+)_l0")


class BiLSTM(nn.Module):
    """A bidirectional, multi-layer LSTM over padded batch-first input: the core's
    ``LSTM(bidirectional=True)`` with ``lengths=`` (torch's kernel, unpacked; the reverse direction
    reads each sentence reversed within its length). Output (B, T, 2H): forward states in
    ``[..., :H]``, backward states in ``[..., H:]``, zeros at padded positions. ``dropout`` acts
    between layers; ``core`` are further arguments of the core (its variants: layer norm, zoneout, ...).

    State dicts of the earlier layout (two one-way LSTMs per layer, ``fwd.{k}.*_l0`` and
    ``bwd.{k}.*_l0``) load unchanged: they are renamed to ``lstm.*_l{k}`` / ``lstm.*_l{k}_reverse``.
    """

    def __init__(
        self, input_size: int, hidden_size: int, num_layers: int = 1, dropout: float = 0.0, **core: Any
    ) -> None:
        super().__init__()
        self.lstm = LSTM(
            input_size,
            hidden_size,
            num_layers,
            batch_first=True,
            bidirectional=True,
            dropout=dropout if num_layers > 1 else 0.0,
            **core,
        )
        self.hidden_size = hidden_size

    def forward(self, x: Tensor, lengths: Tensor, return_gates: bool = False):
        """``out`` (B, T, 2H), plus with ``return_gates`` a list of ``Gates`` (index layer * 2 + d,
        each field (B, T, H) in the sentence's own time order)."""
        res = self.lstm(x, lengths=lengths, return_gates=return_gates)
        return (res[0], res[2]) if return_gates else res[0]

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for key in [k for k in state_dict if k.startswith(prefix)]:
            m = _OLD_KEY.fullmatch(key[len(prefix) :])
            if m:
                direction, layer, name = m.groups()
                state_dict[f"{prefix}lstm.{name}_l{layer}" + ("_reverse" if direction == "bwd" else "")] = (
                    state_dict.pop(key)
                )
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class CharEncoder(nn.Module):
    """Per-word character features: (U, L) char ids + (U,) lengths -> (U, C).

    ``lstm``: the final states of a char BiLSTM, [h_fwd(last char); h_bwd(first char)] (Lample 2016);
    ``cnn``: max over positions of a width-``kernel`` convolution (Ma & Hovy 2016).
    """

    def __init__(self, kind: CharEncoderKind, vocab_size: int, dim: int, hidden: int, kernel: int) -> None:
        super().__init__()
        self.kind = kind
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=0)
        if kind == "lstm":
            self.rnn = BiLSTM(dim, hidden)
            self.out_size = 2 * hidden
        else:
            self.conv = nn.Conv1d(dim, hidden, kernel, padding=kernel // 2)
            self.out_size = hidden

    def forward(self, chars: Tensor, lengths: Tensor) -> Tensor:
        emb = self.embed(chars)  # (U, L, Dch)
        if self.kind == "lstm":
            out = self.rnn(emb, lengths)  # (U, L, 2Hc)
            h = out.size(2) // 2
            last = out[:, :, :h].gather(1, (lengths - 1).view(-1, 1, 1).expand(-1, 1, h)).squeeze(1)  # (U, Hc)
            return torch.cat([last, out[:, 0, h:]], dim=1)  # (U, 2Hc)
        conv = self.conv(emb.transpose(1, 2))  # (U, F, L)
        pad = torch.arange(chars.size(1), device=chars.device).unsqueeze(0) >= lengths.unsqueeze(1)  # (U, L)
        return conv.masked_fill(pad.unsqueeze(1), float("-inf")).max(dim=2).values  # (U, F)


class BiLSTMTagger(nn.Module):
    """Word + char + casing features -> BiLSTM -> linear emissions -> CRF (or softmax)."""

    def __init__(self, cfg: TagConfig, dims: Mapping[str, Any]) -> None:
        super().__init__()
        self.tags = [str(t) for t in dims["tags"]]
        self.scheme = str(dims["scheme"])
        self.unk_replace = cfg.unk_replace
        k = len(self.tags)
        self.words = nn.Embedding(int(dims["vocab_size"]), cfg.embed_size, padding_idx=0)
        bound = math.sqrt(3.0 / cfg.embed_size)
        nn.init.uniform_(self.words.weight, -bound, bound)
        with torch.no_grad():
            self.words.weight[0].zero_()
        in_size = cfg.embed_size
        self.chars = None
        if cfg.char_encoder != "none":
            self.chars = CharEncoder(
                cfg.char_encoder, int(dims["char_vocab_size"]), cfg.char_dim, cfg.char_hidden, cfg.char_kernel
            )
            in_size += self.chars.out_size
        self.casing = nn.Embedding(len(CASINGS), cfg.casing_dim, padding_idx=0) if cfg.casing else None
        in_size += cfg.casing_dim if cfg.casing else 0
        self.dropout = nn.Dropout(cfg.lstm.dropout)
        core = cfg.lstm.core_kwargs()
        core.pop("bidirectional")  # always bidirectional
        self.lstm = BiLSTM(in_size, **core)
        self.out = nn.Linear(cfg.lstm.output_size, k)
        constraints = allowed_transitions(self.tags, self.scheme)  # type: ignore[arg-type]
        self.crf = CRF(k, constraints) if cfg.crf else None

    # ------------------------------------------------------------------------------ features
    def features(self, batch: TagBatch) -> Tensor:
        """The BiLSTM input (B, T, F) (word dropout of singletons while training)."""
        words = batch.words
        if self.training and self.unk_replace > 0:
            drop = batch.singleton & (torch.rand(words.shape, device=words.device) < self.unk_replace)
            words = words.masked_fill(drop, 1)  # 1 = <unk>
        parts = [self.words(words)]  # (B, T, Dw)
        if self.chars is not None:
            per_word = self.chars(batch.chars, batch.char_lengths)  # (U, C)
            parts.append(per_word[batch.char_index])  # (B, T, C)
        if self.casing is not None:
            parts.append(self.casing(batch.casing))  # (B, T, Dc)
        return torch.cat(parts, dim=2)  # (B, T, F)

    def emissions(self, batch: TagBatch) -> Tensor:
        """Tag scores (B, T, K)."""
        x = self.dropout(self.features(batch))  # (B, T, F)
        h = self.lstm(x, batch.lengths)  # (B, T, 2H)
        return self.out(self.dropout(h))  # (B, T, K)

    # ------------------------------------------------------------------------------ objectives
    def forward(self, batch: TagBatch) -> Tensor:
        """The training loss (:meth:`loss`): the trainer calls the module, so DDP syncs its gradients."""
        return self.loss(batch)

    def loss(self, batch: TagBatch) -> Tensor:
        """Mean over sentences of -log p(tags | x) (CRF) or of the summed token cross-entropies."""
        em = self.emissions(batch).float()  # (B, T, K)
        if self.crf is not None:
            return -self.crf(em, batch.tags, batch.mask).mean()
        ce = F.cross_entropy(em.transpose(1, 2), batch.tags, reduction="none")  # (B, T)
        return (ce * batch.mask).sum(1).mean()

    def decode(self, batch: TagBatch) -> Tensor:
        """Best tag ids (B, T) (0 at padding): Viterbi with a CRF, else per-token argmax."""
        em = self.emissions(batch).float()
        if self.crf is not None:
            return self.crf.decode(em, batch.mask)[0]
        return em.argmax(-1) * batch.mask

    def marginals(self, em: Tensor, mask: Tensor) -> Tensor:
        """p(y_t = k | x) (B, T, K): CRF forward-backward, else the softmax."""
        if self.crf is not None:
            return self.crf.marginals(em, mask)
        return em.softmax(-1) * mask.unsqueeze(2)
