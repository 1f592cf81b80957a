"""Sentences -> tensors for the tagger: reading, tag sets, word/char/casing ids and padded batches.

::

    file or [(tokens, tags)] ──► Sentence ──► tags in the model's scheme ──► TagEncoder (fitted on
        the training part) ──► TagExample ──► collate: TagBatch

Dims: B sentences, T tokens (longest sentence), U distinct words of a batch, L characters
(longest distinct word).

A batch stores the characters of each *distinct* word once (``chars`` (U, L)) and, for every
token, the row of its word (``char_index`` (B, T)): the character encoder runs over U words
instead of B*T tokens (frequent words such as "the" or "," repeat many times in a batch).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor

from lstmkit.data.batching import pad_sequences
from lstmkit.data.conll import Scheme, Sentence, convert, read_sentences, split_tag
from lstmkit.data.vocab import Vocab
from lstmkit.errors import DataError, ModelFolderError
from lstmkit.tasks.tag.config import TagConfig

CASINGS = (
    "<pad>",
    "numeric",
    "mainly_numeric",
    "all_lower",
    "all_upper",
    "initial_upper",
    "contains_digit",
    "mixed",
    "other",
)
"""Casing classes of a token (Reimers & Gurevych 2017); id = index."""
_DIGITS = re.compile(r"\d")


def casing(token: str) -> int:
    """The casing class id of ``token`` (see :data:`CASINGS`)."""
    digits = sum(c.isdigit() for c in token)
    if token.isdigit():
        name = "numeric"
    elif digits / max(1, len(token)) > 0.5:
        name = "mainly_numeric"
    elif token.islower():
        name = "all_lower"
    elif token.isupper():
        name = "all_upper"
    elif token[:1].isupper():
        name = "initial_upper"
    elif digits:
        name = "contains_digit"
    elif any(c.isalpha() for c in token):
        name = "mixed"
    else:
        name = "other"
    return CASINGS.index(name)


# ============================================================================================ reading
def read_data(
    data: Any,
    cfg: TagConfig,
    what: str = "data",
    fmt: str | None = None,
    tag_column: int | None = None,
    tag: str | None = None,
) -> tuple[list[Sentence], str]:
    """Tagged sentences of a file (read with ``cfg``'s format, tag column and CoNLL-U tag unless
    given) or of ``[Sentence]`` / ``[(tokens, tags)]``; returns them and a name for messages."""
    if isinstance(data, (str, Path)):
        fmt = fmt or cfg.format
        col = cfg.tag_column if tag_column is None else tag_column
        sents = read_sentences(data, fmt, col, tag or cfg.tag)  # type: ignore[arg-type]
        return sents, str(data)
    out = []
    for i, item in enumerate(data):
        if isinstance(item, Sentence):
            out.append(item)
            continue
        toks, tags = [str(t) for t in item[0]], [str(t) for t in item[1]]
        if len(toks) != len(tags) or not toks:
            raise DataError(f"{what}: sentence {i + 1}: {len(toks)} tokens but {len(tags)} tags")
        out.append(Sentence(toks, tags, [i + 1] * len(toks)))
    if not out:
        raise DataError(f"{what}: no sentences")
    return out, what


def model_tags(sentences: Sequence[Sentence], model_scheme: Scheme) -> list[list[str]]:
    """Each sentence's tags in the model's scheme (unchanged for plain labels, ``none``)."""
    return [convert(s.tags or [], model_scheme) for s in sentences]


def tag_set(tag_lists: Sequence[Sequence[str]], model_scheme: Scheme) -> list[str]:
    """The model's tags from the training tags (id = index): O first, then by entity type and prefix.

    Chunk tags get every prefix of the model's scheme for each entity type seen (B/I/E/S or B/I),
    so a single-token entity of a type met only in longer chunks still has its ``S-`` tag; plain
    labels are sorted.
    """
    seen = {t for ts in tag_lists for t in ts}
    if model_scheme == "none":
        return sorted(seen)
    prefixes = "BIES" if model_scheme == "IOBES" else "BI"
    types = {split_tag(t)[1] for t in seen if t != "O"}
    tags = {"O"} | {f"{p}-{typ}" for typ in types for p in prefixes}
    return sorted(tags, key=lambda t: (t != "O", t[2:] if t[1:2] == "-" else t, t))


class TagExample(NamedTuple):
    """One encoded sentence: ``words``, ``casing``, ``tags`` (T,) long, ``singleton`` (T,) bool
    (a word seen once in training: word dropout candidate) and the char ids of each token."""

    words: Tensor
    casing: Tensor
    tags: Tensor
    singleton: Tensor
    chars: tuple[tuple[int, ...], ...]


class TagBatch(NamedTuple):
    """Padded batch. words, casing, tags, char_index (B, T) long; mask (B, T) bool; singleton (B, T)
    bool; lengths (B,) long; chars (U, L) long; char_lengths (U,) long."""

    words: Tensor
    casing: Tensor
    tags: Tensor
    mask: Tensor
    singleton: Tensor
    lengths: Tensor
    chars: Tensor
    char_lengths: Tensor
    char_index: Tensor


@dataclass
class TagEncoder:
    """Vocabularies of words, characters and tags, and how tokens are normalised for the word lookup.

    ``lowercase`` / ``zeros`` (digits -> 0) apply to word lookup only; characters keep case and
    digits. ``singletons``: normalised words seen exactly once in training.
    """

    words: Vocab
    chars: Vocab
    tags: list[str]
    lowercase: bool = True
    zeros: bool = True
    max_word_len: int = 40
    singletons: frozenset[str] = frozenset()

    @classmethod
    def build(
        cls,
        token_lists: Sequence[Sequence[str]],
        tags: list[str],
        lowercase: bool = True,
        zeros: bool = True,
        min_freq: int = 1,
        max_word_len: int = 40,
    ) -> TagEncoder:
        """Vocabularies from the training tokens; ``tags`` is the full tag list (id = index)."""
        norm = cls(Vocab([]), Vocab([]), tags, lowercase, zeros, max_word_len)
        counts = Counter(norm.normalise(t) for toks in token_lists for t in toks)
        words = Vocab.build([list(counts.elements())], min_freq=min_freq)
        chars = Vocab.build([list(t[:max_word_len]) for toks in token_lists for t in toks])
        singles = frozenset(w for w, c in counts.items() if c == 1 and w in words)
        return cls(words, chars, tags, lowercase, zeros, max_word_len, singles)

    def normalise(self, token: str) -> str:
        """The word-lookup form of ``token``."""
        if self.lowercase:
            token = token.lower()
        if self.zeros:
            token = _DIGITS.sub("0", token)
        return token

    def tag_ids(self, tags: Sequence[str], where: str) -> list[int]:
        index = {t: i for i, t in enumerate(self.tags)}
        try:
            return [index[t] for t in tags]
        except KeyError as e:
            known = ", ".join(self.tags)
            raise DataError(f"{where}: tag {e.args[0]!r} was not seen in training (model tags: {known})") from None

    def encode(self, tokens: Sequence[str], tags: Sequence[str] | None = None, where: str = "input") -> TagExample:
        """One sentence -> :class:`TagExample` (tags all 0 when ``tags`` is None)."""
        if not tokens:
            raise DataError(f"{where}: empty sentence")
        normed = [self.normalise(t) for t in tokens]
        n = len(tokens)
        return TagExample(
            words=torch.tensor(self.words.encode(normed), dtype=torch.long),
            casing=torch.tensor([casing(t) for t in tokens], dtype=torch.long),
            tags=torch.tensor(self.tag_ids(tags, where) if tags is not None else [0] * n, dtype=torch.long),
            singleton=torch.tensor([w in self.singletons for w in normed], dtype=torch.bool),
            chars=tuple(tuple(self.chars.encode(list(t[: self.max_word_len]))) for t in tokens),
        )

    def examples(
        self, sentences: Sequence[Sentence], tag_lists: Sequence[Sequence[str]], source: str
    ) -> list[TagExample]:
        """Encoded sentences with their (model-scheme) tags; messages name ``source:line``."""
        return [
            self.encode(s.tokens, t, f"{source}:{s.lines[0] if s.lines else i + 1}")
            for i, (s, t) in enumerate(zip(sentences, tag_lists))
        ]

    def dims(self, scheme: str) -> dict[str, Any]:
        """What the network is built for: vocabulary sizes, the tags and the scheme of their constraints."""
        return {
            "vocab_size": len(self.words),
            "char_vocab_size": len(self.chars),
            "tags": list(self.tags),
            "scheme": scheme,
        }

    def transforms(self) -> dict[str, Any]:
        """The JSON files of a model folder: words.json, chars.json, tags.json."""
        return {
            "words": {**self.words.to_json(), "singletons": sorted(self.singletons)},
            "chars": self.chars.to_json(),
            "tags": {"tags": list(self.tags)},
        }

    @classmethod
    def from_transforms(cls, cfg: TagConfig, tr: Mapping[str, Any], dims: Mapping[str, Any]) -> TagEncoder:
        """The encoder saved by :meth:`transforms`, checked against the network's ``dims``; a bad file
        raises :class:`ModelFolderError` starting with its name."""
        parts: dict[str, Any] = {}
        for name, read in (
            ("words", Vocab.from_json),
            ("chars", Vocab.from_json),
            ("tags", lambda d: [str(t) for t in d["tags"]]),
        ):
            try:
                parts[name] = read(tr[name])
            except (KeyError, TypeError, ValueError, ModelFolderError) as e:
                raise ModelFolderError(f"{name}.json: missing or malformed ({type(e).__name__}: {e})") from None
        for name, size, key in (
            ("words", len(parts["words"]), "vocab_size"),
            ("chars", len(parts["chars"]), "char_vocab_size"),
        ):
            if size != dims[key]:
                raise ModelFolderError(f"{name}.json: {size} entries, the model was built for {dims[key]}")
        if parts["tags"] != list(dims["tags"]):
            raise ModelFolderError(f"tags.json: {parts['tags']} differ from the model's tags {list(dims['tags'])}")
        singles = tr["words"].get("singletons", []) if isinstance(tr["words"], dict) else []
        return cls(
            parts["words"],
            parts["chars"],
            parts["tags"],
            cfg.lowercase,
            cfg.zeros,
            cfg.max_word_len,
            frozenset(singles),
        )


def collate(examples: list[TagExample]) -> TagBatch:
    """Pad a list of examples into a :class:`TagBatch` (distinct words' characters stored once)."""
    words, lengths = pad_sequences([e.words for e in examples])  # (B, T), (B,)
    casing_ids, _ = pad_sequences([e.casing for e in examples])  # (B, T)
    tags, _ = pad_sequences([e.tags for e in examples])  # (B, T)
    singleton, _ = pad_sequences([e.singleton for e in examples], padding_value=False)  # (B, T)
    mask = torch.arange(words.size(1)).unsqueeze(0) < lengths.unsqueeze(1)  # (B, T)
    rows: dict[tuple[int, ...], int] = {}
    char_index = torch.zeros_like(words)  # (B, T): row of each token's word in `chars`
    for b, e in enumerate(examples):
        char_index[b, : len(e.chars)] = torch.tensor([rows.setdefault(c, len(rows)) for c in e.chars])
    distinct = list(rows)  # U char tuples, in first-seen order
    chars, char_lengths = pad_sequences([torch.tensor(c, dtype=torch.long) for c in distinct])  # (U, L), (U,)
    return TagBatch(words, casing_ids, tags, mask, singleton, lengths, chars, char_lengths, char_index)
