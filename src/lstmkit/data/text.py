"""Tokenizers and a pretrained-embeddings loader (classification and language models).

Files are read by :func:`lstmkit.data.files.read_lines`; the labelled-text readers of classification
are in :mod:`lstmkit.data.labelled`.

Tokenizers (all ``tokenize(text) -> list[str]`` and JSON-serialisable via :func:`tokenizer_to_json`):
``word`` (regex, optional lowercase), ``whitespace`` (pre-tokenised text), ``char``, and ``bpe``
(Hugging Face ``tokenizers`` byte-pair encoding trained on the training texts).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol

from lstmkit.data.files import short
from lstmkit.data.vocab import PAD, UNK, Vocab
from lstmkit.errors import DataError

if TYPE_CHECKING:  # torch for pretrained embeddings only: tokenizers load without it
    import torch

TextFormat = Literal["auto", "csv", "tsv", "lines"]
TokenizerKind = Literal["word", "whitespace", "char", "bpe"]


# ============================================================================================ tokenizers
class Tokenizer(Protocol):
    kind: str

    def tokenize(self, text: str) -> list[str]: ...


# words with inner apostrophes/hyphens ("don't", "n't", "well-known"), clitics ("'s"), or one symbol
WORD_RE = re.compile(r"\w+(?:['\-]\w+)*|'\w+|[^\w\s]")


@dataclass
class WordTokenizer:
    """Regex word tokenizer: words (with inner ' or -), clitics and single punctuation marks."""

    lowercase: bool = False
    kind: str = "word"

    def tokenize(self, text: str) -> list[str]:
        return WORD_RE.findall(text.lower() if self.lowercase else text)


@dataclass
class WhitespaceTokenizer:
    """Split on whitespace only (for pre-tokenised corpora such as WikiText, PTB, SST)."""

    lowercase: bool = False
    kind: str = "whitespace"

    def tokenize(self, text: str) -> list[str]:
        return (text.lower() if self.lowercase else text).split()


@dataclass
class CharTokenizer:
    """One token per character."""

    lowercase: bool = False
    kind: str = "char"

    def tokenize(self, text: str) -> list[str]:
        return list(text.lower() if self.lowercase else text)


class BpeTokenizer:
    """Byte-pair encoding from Hugging Face ``tokenizers`` (whitespace pre-tokenisation, ``<unk>`` for unseen
    characters). Train with :meth:`train`; the tokenizer's own JSON is stored in the model folder.

    ``train(..., reversible=True)`` (translation) keeps spaces as ``▁`` pieces (Metaspace) and splits off
    punctuation after NFKC normalisation, so :meth:`decode` gives back the text (for characters seen in
    training); :meth:`encode` / :meth:`decode` / :meth:`id_to_token` work with the model's own ids.
    """

    kind = "bpe"

    def __init__(self, hf_tokenizer: Any, lowercase: bool = False) -> None:
        self.hf = hf_tokenizer
        self.lowercase = lowercase

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        vocab_size: int = 8000,
        lowercase: bool = False,
        *,
        specials: Sequence[str] = (PAD, UNK),
        reversible: bool = False,
    ) -> BpeTokenizer:
        """Learn at most ``vocab_size`` ids from ``texts``; ``specials`` get ids 0, 1, ... in order."""
        from tokenizers import Tokenizer as HfTokenizer
        from tokenizers import decoders, models, normalizers, pre_tokenizers, trainers

        hf = HfTokenizer(models.BPE(unk_token=UNK))
        if reversible:
            hf.normalizer = normalizers.Sequence(
                [normalizers.NFKC()] + ([normalizers.Lowercase()] if lowercase else [])
            )
            hf.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Metaspace(), pre_tokenizers.Punctuation()])
            hf.decoder = decoders.Metaspace()
        else:
            hf.pre_tokenizer = pre_tokenizers.Whitespace()
            if lowercase:
                hf.normalizer = normalizers.Lowercase()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(specials), show_progress=False)
        hf.train_from_iterator(list(texts), trainer=trainer)
        return cls(hf, lowercase)

    def tokenize(self, text: str) -> list[str]:
        return self.hf.encode(text).tokens

    def size(self) -> int:
        """Number of ids (specials included)."""
        return int(self.hf.get_vocab_size(with_added_tokens=True))

    def encode(self, text: str) -> list[int]:
        """Text -> the model's ids (no special tokens added)."""
        return list(self.hf.encode(text, add_special_tokens=False).ids)

    def decode(self, ids: Sequence[int]) -> str:
        """Ids -> text through the tokenizer's decoder (specials kept: filter them before)."""
        return str(self.hf.decode([int(i) for i in ids], skip_special_tokens=False))

    def token_to_id(self, token: str) -> int | None:
        return self.hf.token_to_id(token)

    def id_to_token(self, i: int) -> str | None:
        return self.hf.id_to_token(int(i))

    def vocab(self) -> Vocab:
        """A Vocab whose ids equal the BPE model's ids (``<pad>``=0, ``<unk>``=1 were trained first)."""
        by_id = sorted(self.hf.get_vocab().items(), key=lambda kv: kv[1])
        return Vocab([t for t, _ in by_id], specials=(PAD, UNK))


def make_tokenizer(kind: TokenizerKind, lowercase: bool = False) -> Tokenizer:
    """A non-trained tokenizer by name (``bpe`` must be trained: use :meth:`BpeTokenizer.train`)."""
    table: dict[str, type[WordTokenizer | WhitespaceTokenizer | CharTokenizer]] = {
        "word": WordTokenizer,
        "whitespace": WhitespaceTokenizer,
        "char": CharTokenizer,
    }
    if kind not in table:
        raise DataError(f"tokenizer '{kind}' needs training or is unknown (choose word, whitespace, char, bpe)")
    return table[kind](lowercase=lowercase)


def tokenizer_to_json(tok: Tokenizer) -> dict[str, Any]:
    """``{"kind", "lowercase"}`` (+ ``"bpe"``: the Hugging Face tokenizer's JSON) for the model folder."""
    d: dict[str, Any] = {"kind": tok.kind, "lowercase": bool(getattr(tok, "lowercase", False))}
    if isinstance(tok, BpeTokenizer):
        d["bpe"] = json.loads(tok.hf.to_str())
    return d


def tokenizer_from_json(d: dict[str, Any]) -> Tokenizer:
    from lstmkit.errors import ModelFolderError

    kind = d.get("kind") if isinstance(d, dict) else None
    if kind == "bpe":
        from tokenizers import Tokenizer as HfTokenizer

        try:
            return BpeTokenizer(HfTokenizer.from_str(json.dumps(d["bpe"])), bool(d.get("lowercase", False)))
        except Exception as e:  # tokenizers raises its own exception types
            raise ModelFolderError(f"tokenizer.json: cannot read the BPE tokenizer ({e})") from None
    if kind not in ("word", "whitespace", "char"):
        raise ModelFolderError(f"tokenizer.json: unknown tokenizer kind {kind!r}")
    return make_tokenizer(kind, bool(d.get("lowercase", False)))


# ============================================================================================ embeddings
class Embeddings(NamedTuple):
    """Pretrained vectors aligned to a vocabulary: ``weight`` (V, D); ``found`` how many ids got a vector."""

    weight: torch.Tensor
    found: int


def load_embeddings(path: str | Path, vocab: Vocab, seed: int = 0, lowercase_fallback: bool = True) -> Embeddings:
    """Read a GloVe or word2vec *text* file (``word v1 ... vD`` per line; word2vec's ``N D`` first line is
    skipped) and return vectors for the words of ``vocab``.

    With ``lowercase_fallback`` a vocabulary word absent from the file takes the vector of its lowercase
    form (GloVe files are lowercase). Words missing from the file get N(0, 0.1²) vectors drawn with
    ``seed``; ``<pad>`` gets zeros. Only vocabulary words are kept in memory, so large files stream.
    A line with the wrong number of values raises DataError naming the line.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: embeddings file not found")
    vectors: dict[int, list[float]] = {}
    stoi = {t: i for i, t in enumerate(vocab.tokens)}
    by_lower: dict[str, list[int]] = {}
    for t, i in stoi.items():
        if t.lower() != t:
            by_lower.setdefault(t.lower(), []).append(i)
    exact: set[int] = set()
    dim = None
    with p.open("rb") as f:
        for n, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8").rstrip()
            except UnicodeDecodeError:
                raise DataError(f"{p}: line {n} is not valid UTF-8") from None
            parts = line.split(" ")
            if n == 1 and len(parts) == 2 and all(s.isdigit() for s in parts):
                continue  # word2vec header "N D"
            if len(parts) < 2:
                continue
            word, vals = parts[0], parts[1:]
            if dim is None:
                dim = len(vals)
            elif len(vals) != dim:
                raise DataError(f"{p}: line {n} has {len(vals)} values, earlier lines have {dim}")
            targets = [i for i in [stoi.get(word)] if i is not None]
            if lowercase_fallback:  # a cased vocabulary word takes a lowercase file's vector if it has none
                targets += [i for i in by_lower.get(word, []) if i not in exact and i not in targets]
            if not targets:
                continue
            try:
                vec = [float(v) for v in vals]
            except ValueError:
                raise DataError(f"{p}: line {n}: non-numeric value in the vector for {word!r}") from None
            if not all(math.isfinite(v) for v in vec):
                raise DataError(f"{p}: line {n}: NaN or infinite value in the vector for {short(word)}")
            for i in targets:
                vectors[i] = vec
            if word in stoi:
                exact.add(stoi[word])
    if dim is None:
        raise DataError(f"{p}: file is empty")
    import torch

    g = torch.Generator().manual_seed(seed)
    weight = torch.randn(len(vocab), dim, generator=g) * 0.1  # (V, D)
    for i, vec in vectors.items():
        weight[i] = torch.tensor(vec)
    if vocab.pad_id is not None:
        weight[vocab.pad_id] = 0.0
    return Embeddings(weight, len(vectors))
