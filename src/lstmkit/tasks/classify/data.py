"""Labelled texts -> examples: reading, the encoder (labels, tokenizer, vocabulary or scaler), batches.

::

    CSV/TSV/"label<TAB>text" ──► LabelledText ──► Encoder (fitted on train) ──► (ids (T,), label id)
        ──► collate: ClassifyBatch(x (B, T), lengths (B,), y (B,))

``input="numeric"`` reads each text field as numbers, standardised with the training mean and std.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lstmkit.data.batching import pad_sequences
from lstmkit.data.text import (
    BpeTokenizer,
    LabelledText,
    Tokenizer,
    make_tokenizer,
    parse_numbers,
    read_labelled,
    tokenizer_from_json,
    tokenizer_to_json,
)
from lstmkit.data.vocab import Vocab
from lstmkit.errors import DataError, ModelFolderError
from lstmkit.tasks.classify.config import ClassifyConfig
from lstmkit.tasks.classify.model import ClassifyBatch

Example = tuple[torch.Tensor, int]


def read_rows(data: Any, cfg: ClassifyConfig, what: str = "data") -> tuple[list[LabelledText], str]:
    """Labelled rows of a file (read with the config's columns and format) or of ``[(text, label), ...]``."""
    if isinstance(data, (str, Path)):
        return read_labelled(data, cfg.text_column, cfg.label_column, cfg.format), str(data)
    rows = [LabelledText(str(t), str(y), i + 1) for i, (t, y) in enumerate(data)]
    if not rows:
        raise DataError(f"{what}: no examples")
    return rows, what


def _sort_labels(labels: set[str]) -> list[str]:
    try:
        return sorted(labels, key=float)
    except ValueError:
        return sorted(labels)


@dataclass
class Encoder:
    """Text -> tensor of ids (or standardised values): the data side of a trained classifier."""

    config: ClassifyConfig
    labels: list[str]
    tokenizer: Tokenizer | None = None
    vocab: Vocab | None = None
    scaler: dict[str, float] = field(default_factory=lambda: {"mean": 0.0, "std": 1.0})

    @classmethod
    def fit(cls, rows: Sequence[LabelledText], cfg: ClassifyConfig, source: str) -> Encoder:
        """Labels, tokenizer and vocabulary (or the scaler) from the training rows."""
        labels = _sort_labels({r.label for r in rows})
        if len(labels) < 2:
            raise DataError(f"{source}: needs at least 2 different labels, found {labels}")
        if cfg.input == "numeric":
            vals = np.concatenate([parse_numbers(r.text, f"{source}: line {r.line}") for r in rows])
            return cls(cfg, labels, scaler={"mean": float(vals.mean()), "std": float(vals.std()) or 1.0})
        if cfg.tokenizer == "bpe":
            bpe = BpeTokenizer.train((r.text for r in rows), cfg.bpe_vocab_size, cfg.lowercase)
            return cls(cfg, labels, bpe, bpe.vocab())
        tok = make_tokenizer(cfg.tokenizer, cfg.lowercase)
        vocab = Vocab.build((tok.tokenize(r.text) for r in rows), min_freq=cfg.min_freq, max_size=cfg.max_vocab)
        return cls(cfg, labels, tok, vocab)

    def encode(self, text: str, where: str = "input") -> torch.Tensor:
        """(T,) long ids, or (T,) float standardised values for numeric input; never empty."""
        if self.config.input == "numeric":
            vals = parse_numbers(text, where)[: self.config.max_len]
            return (torch.tensor(vals, dtype=torch.float32) - self.scaler["mean"]) / self.scaler["std"]
        assert self.tokenizer is not None and self.vocab is not None
        toks = self.tokenizer.tokenize(text)[: self.config.max_len] or ["<unk>"]
        return torch.tensor(self.vocab.encode(toks), dtype=torch.long)

    def tokens(self, text: str) -> list[str]:
        """One label per LSTM step: the tokens (or the numbers) of ``text``."""
        if self.config.input == "numeric":
            return [f"{v:g}" for v in parse_numbers(text, "sample")[: self.config.max_len]]
        assert self.tokenizer is not None
        return self.tokenizer.tokenize(text)[: self.config.max_len] or ["<unk>"]

    def label_id(self, label: str, where: str) -> int:
        try:
            return self.labels.index(label)
        except ValueError:
            raise DataError(f"{where}: label {label!r} is not one the model knows ({', '.join(self.labels)})") from None

    def examples(self, rows: Sequence[LabelledText], source: str) -> list[Example]:
        return [
            (self.encode(r.text, f"{source}: line {r.line}"), self.label_id(r.label, f"{source}: line {r.line}"))
            for r in rows
        ]

    def dims(self) -> dict[str, Any]:
        """Sizes the network is built for."""
        if self.vocab is None:
            return {"num_classes": len(self.labels)}
        return {
            "num_classes": len(self.labels),
            "vocab_size": len(self.vocab),
            "pad_id": self.vocab.pad_id or 0,
            "unk_id": self.vocab.unk_id,
        }

    def transforms(self) -> dict[str, Any]:
        t: dict[str, Any] = {"labels": {"labels": self.labels}}
        if self.config.input == "numeric":
            t["scaler"] = self.scaler
        else:
            assert self.tokenizer is not None and self.vocab is not None
            t["tokenizer"] = tokenizer_to_json(self.tokenizer)
            t["vocab"] = self.vocab.to_json()
        return t

    @classmethod
    def from_transforms(cls, cfg: ClassifyConfig, t: Mapping[str, Any], dims: Mapping[str, Any]) -> Encoder:
        """The encoder saved by :meth:`transforms`, checked against the network's ``dims``."""
        try:
            labels = [str(x) for x in t["labels"]["labels"]]
            if cfg.input == "numeric":
                scaler = {"mean": float(t["scaler"]["mean"]), "std": float(t["scaler"]["std"])}
                enc = cls(cfg, labels, scaler=scaler)
            else:
                vocab = Vocab.from_json(t["vocab"])
                if len(vocab) != dims["vocab_size"]:
                    raise ModelFolderError(
                        f"vocab.json: {len(vocab)} tokens, the model was built for {dims['vocab_size']}"
                    )
                enc = cls(cfg, labels, tokenizer_from_json(t["tokenizer"]), vocab)
        except (KeyError, TypeError, ValueError) as e:
            raise ModelFolderError(
                f"labels.json, vocab.json, tokenizer.json or scaler.json: missing or malformed "
                f"({type(e).__name__}: {e})"
            ) from None
        if len(labels) != dims["num_classes"]:
            raise ModelFolderError(f"labels.json: {len(labels)} labels, the model has {dims['num_classes']} classes")
        return enc


def collate(examples: list[Example]) -> ClassifyBatch:
    """[(ids (T_i,), label)] -> ClassifyBatch(x (B, T), lengths (B,), y (B,))."""
    x, lengths = pad_sequences([e[0] for e in examples], padding_value=0)
    return ClassifyBatch(x, lengths, torch.tensor([e[1] for e in examples], dtype=torch.long))
