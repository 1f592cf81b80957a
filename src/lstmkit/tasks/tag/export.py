"""What ``lstmkit export`` writes for a tagger: one graph, ``emissions``, and the CRF's scores.

Graph ``emissions``: the word / char / casing features, the BiLSTM and the output layer, with the
inputs as :class:`~lstmkit.tasks.tag.data.TagArrays` holds them (only those the network reads)::

    words (B, T) int64, lengths (B,) int64                          always
    casing (B, T) int64                                             with casing features
    chars (U, L) int64, char_lengths (U,) int64, char_index (B, T)  with a char encoder (CNN or BiLSTM,
                                                                    run inside the graph)
    -> emissions (B, T, K) float32

``extras``: the CRF's effective scores (``CRF._scores()``: the learnt ones with the scheme's forbidden
moves at ``IMPOSSIBLE``): ``start`` (K,), ``end`` (K,), ``transitions`` (K_from, K_to); none without a
CRF. The runtime decodes with :mod:`lstmkit.runtime.decode` as the predictor does with torch.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from lstmkit.export import GraphSpec
from lstmkit.tasks.tag.data import TagBatch, pad_examples, to_batch

#: an example batch for tracing: B=2, T=5, U=8 distinct words, L=6 characters (sizes all different)
EXAMPLE = [["Peter", "lives", "in", "Berlin1", "."], ["EU", "x", "Paris"]]


def input_names(predictor: Any) -> list[str]:
    """The graph's inputs: the fields of the batch that the network reads."""
    cfg = predictor.config
    names = ["words", "lengths"]
    if cfg.casing:
        names.append("casing")
    if cfg.char_encoder != "none":
        names += ["chars", "char_lengths", "char_index"]
    return names


class Emissions(nn.Module):
    """``BiLSTMTagger.emissions`` on the named batch fields (``inputs``) -> (B, T, K)."""

    def __init__(self, tagger: nn.Module, inputs: list[str]) -> None:
        super().__init__()
        self.tagger = tagger
        self.inputs = inputs

    def forward(self, *tensors: Tensor) -> Tensor:
        fields = dict(zip(self.inputs, tensors))
        batch = TagBatch(*(fields.get(name) for name in TagBatch._fields))  # type: ignore[arg-type]
        return self.tagger.emissions(batch)  # type: ignore[operator]


def graphs(predictor: Any) -> list[GraphSpec]:
    names = input_names(predictor)
    arrays = pad_examples([predictor.encoder.encode(toks, None, "example") for toks in EXAMPLE])
    batch = to_batch(arrays)._asdict()
    args = tuple(batch[n] for n in names)
    axes = {"words": "B T", "lengths": "B", "casing": "B T", "chars": "U L", "char_lengths": "U", "char_index": "B T"}
    dynamic = {n: dict(enumerate(axes[n].split())) for n in names}
    dynamic["emissions"] = {0: "B", 1: "T"}
    return [GraphSpec("emissions", Emissions(predictor.net, names), args, names, ["emissions"], dynamic)]


def extras(predictor: Any) -> dict[str, Any]:
    crf = predictor.net.crf
    if crf is None:
        return {}
    with torch.no_grad():
        trans, start, end = crf._scores()
    return {"start": start.tolist(), "end": end.tolist(), "transitions": trans.tolist()}
