"""Labelled texts -> examples: reading, the encoder (labels, tokenizer, vocabulary or scaler), batches.

::

    CSV/TSV/"label<TAB>text" ──► LabelledText ──► Encoder (fitted on train) ──► (ids (T,), label id)
        ──► collate: ClassifyBatch(x (B, T), lengths (B,), y (B,))

``input="numeric"`` reads each text field as numbers, standardised with the training mean and std.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from lstmkit.data.arrays import pad_arrays
from lstmkit.data.labelled import LabelledText, listing, parse_numbers, read_labelled, short
from lstmkit.data.text import BpeTokenizer, Tokenizer, make_tokenizer, tokenizer_from_json, tokenizer_to_json
from lstmkit.data.vocab import Vocab
from lstmkit.errors import DataError, ModelFolderError
from lstmkit.tasks.classify.config import ClassifyConfig

if TYPE_CHECKING:  # torch only where batches are made: the runtime encodes texts without it
    import torch

Example = tuple[np.ndarray, int]  # (ids (T,) int64 or values (T,) float32, label id)


class ClassifyBatch(NamedTuple):
    """A padded batch: ``x`` (B, T) token ids (long) or values (float), ``lengths`` (B,), ``y`` (B,)."""

    x: torch.Tensor
    lengths: torch.Tensor
    y: torch.Tensor


#: how in-memory data is named in messages ("data: item 3: ...")
IN_MEMORY = ("data", "valid", "test")


def at(source: str, n: int) -> str:
    """Where example ``n`` is: ``file: line n``, or ``data: item n`` for in-memory examples."""
    return f"{source}: item {n}" if source in IN_MEMORY else f"{source}: line {n}"


def read_rows(data: Any, cfg: ClassifyConfig, what: str = "data") -> tuple[list[LabelledText], str]:
    """Labelled rows of a file (read with the config's columns and format) or of ``[(text, label), ...]``."""
    if isinstance(data, (str, os.PathLike)):
        return read_labelled(os.fspath(data), cfg.text_column, cfg.label_column, cfg.format), str(data)
    rows = labelled_pairs(data, what)
    if not rows:
        raise DataError(f"{what}: no examples")
    return rows, what


def labelled_pairs(data: Any, what: str) -> list[LabelledText]:
    """In-memory ``[(text, label), ...]`` as rows; anything else raises naming the item at fault."""
    if isinstance(data, (bytes, Mapping)) or not isinstance(data, Iterable):
        raise DataError(f"{what}: expected a file path or a list of (text, label) pairs, got {type(data).__name__}")
    rows = []
    for i, item in enumerate(data, start=1):
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise DataError(f"{what}: item {i}: expected a (text, label) pair, got {short(item)}")
        text, label = item
        if not isinstance(text, str):
            raise DataError(f"{what}: item {i}: the text must be a str, got {type(text).__name__}")
        if isinstance(label, bool) or not isinstance(label, (str, int)):
            raise DataError(f"{what}: item {i}: the label must be a str or an int, got {type(label).__name__}")
        if not str(label).strip():
            raise DataError(f"{what}: item {i}: empty label")
        rows.append(LabelledText(text.strip(), str(label).strip(), i))
    return rows


def texts_of(items: Any) -> list[str]:
    """Predict inputs as texts: a str is one text; every item must be a str (named when not)."""
    if isinstance(items, str):
        return [items]
    if isinstance(items, (bytes, Mapping)) or not isinstance(items, Iterable):
        raise DataError(f"input: expected a text (str) or a list of texts, got {type(items).__name__}")
    texts = list(items)
    for i, t in enumerate(texts, start=1):
        if not isinstance(t, str):
            raise DataError(f"input {i}: expected a text (str), got {type(t).__name__} {short(t)}")
    return texts


def check_labels(rows: Sequence[LabelledText], source: str, vrows: Sequence[LabelledText], vsource: str) -> None:
    """At least two labels in training; every validation label occurs in training."""
    labels = {r.label for r in rows}
    if len(labels) < 2:
        raise DataError(
            f"{source}: needs at least 2 different labels, found {listing(sorted(labels))}; "
            "check --label-column / --format"
        )
    for r in vrows:
        if r.label not in labels:
            raise DataError(
                f"{at(vsource, r.line)}: label {short(r.label)} does not occur in the training data "
                f"({len(labels)} labels: {listing(_sort_labels(labels))})"
            )


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
    cut: tuple[int, int] = (0, 0)  # texts cut to --max-len by the last encode_many, and the longest
    quiet_limits: bool = False  # no warning about cut texts (they were reported already)

    @classmethod
    def fit(
        cls, rows: Sequence[LabelledText], cfg: ClassifyConfig, source: str, labels: Iterable[str] | None = None
    ) -> Encoder:
        """Tokenizer and vocabulary (or the scaler) from the training rows; the labels of ``labels``
        (default: the training rows' labels; with a held-out part of --data, all of --data's)."""
        check_labels(rows, source, [], source)
        labels = _sort_labels(set(labels) if labels is not None else {r.label for r in rows})
        if cfg.input == "numeric":
            vals = np.concatenate([parse_numbers(r.text, at(source, r.line)) for r in rows])
            return cls(cfg, labels, scaler={"mean": float(vals.mean()), "std": float(vals.std()) or 1.0})
        if cfg.tokenizer == "bpe":
            bpe = BpeTokenizer.train((r.text for r in rows), cfg.bpe_vocab_size, cfg.lowercase)
            return cls(cfg, labels, bpe, bpe.vocab())
        tok = make_tokenizer(cfg.tokenizer, cfg.lowercase)
        vocab = Vocab.build((tok.tokenize(r.text) for r in rows), min_freq=cfg.min_freq, max_size=cfg.max_vocab)
        return cls(cfg, labels, tok, vocab)

    def pieces(self, text: str, where: str = "input") -> list[str] | list[float]:
        """Every token of ``text`` (every number for numeric input), before ``--max-len``."""
        if self.config.input == "numeric":
            return parse_numbers(text, where)
        assert self.tokenizer is not None
        return self.tokenizer.tokenize(text)

    def array(self, pieces: list[str] | list[float]) -> np.ndarray:
        """(T,) int64 ids, or (T,) float32 standardised values for numeric input; never empty."""
        if self.config.input == "numeric":
            vals = np.asarray(pieces, dtype=np.float32)
            return (vals - np.float32(self.scaler["mean"])) / np.float32(self.scaler["std"])
        assert self.vocab is not None
        return np.asarray(self.vocab.encode([str(p) for p in pieces] or ["<unk>"]), dtype=np.int64)

    def encode(self, text: str, where: str = "input") -> np.ndarray:
        """The first ``--max-len`` pieces of ``text`` as an array (see :meth:`array`)."""
        return self.array(self.pieces(text, where)[: self.config.max_len])

    def encode_many(
        self, texts: Sequence[str], wheres: Sequence[str], source: str, warn: bool = True
    ) -> list[np.ndarray]:
        """:meth:`encode` of each text. Texts longer than ``--max-len`` are cut, with ONE warning on
        stderr for all of them (``warn=False``: the count is left in ``self.cut`` for the caller)."""
        limit, cut, longest, out = self.config.max_len, 0, 0, []
        for text, where in zip(texts, wheres):
            pieces = self.pieces(text, where)
            if limit is not None and len(pieces) > limit:
                cut, longest = cut + 1, max(longest, len(pieces))
            out.append(self.array(pieces[:limit]))
        self.cut = (cut, longest)
        if warn:
            self.warn_cut(source, cut, longest)
        return out

    def warn_cut(self, source: str, cut: int, longest: int) -> None:
        """The one warning line about texts cut to ``--max-len`` (none when ``cut`` is 0 or
        ``self.quiet_limits``)."""
        if not cut or self.quiet_limits:
            return
        limit = self.config.max_len
        unit = "numbers" if self.config.input == "numeric" else "tokens"
        print(
            f"warning: {source}: {cut} text{'s' if cut > 1 else ''} longer than --max-len {limit} {unit} "
            f"(longest {longest}) cut to their first {limit}",
            file=sys.stderr,
        )

    def tokens(self, text: str) -> list[str]:
        """One label per LSTM step: the tokens (or the numbers) of ``text``."""
        pieces = self.pieces(text, "sample")[: self.config.max_len]
        if self.config.input == "numeric":
            return [f"{v:g}" for v in pieces]
        return [str(p) for p in pieces] or ["<unk>"]

    def label_id(self, label: str, where: str) -> int:
        try:
            return self.labels.index(label)
        except ValueError:
            raise DataError(
                f"{where}: label {short(label)} is not one the model knows "
                f"({len(self.labels)} labels: {listing(self.labels)})"
            ) from None

    def examples(self, rows: Sequence[LabelledText], source: str, warn: bool = True) -> list[Example]:
        ids = [self.label_id(r.label, at(source, r.line)) for r in rows]
        seqs = self.encode_many([r.text for r in rows], [at(source, r.line) for r in rows], source, warn)
        return list(zip(seqs, ids))

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
    import torch

    x, lengths = pad_arrays([e[0] for e in examples])
    y = torch.tensor([e[1] for e in examples], dtype=torch.long)
    return ClassifyBatch(torch.from_numpy(x), torch.from_numpy(lengths), y)
