"""Sentences -> arrays for the tagger: reading, tag sets, word/char/casing ids and padded batches.

::

    file or [(tokens, tags)] ──► Sentence ──► tags in the model's scheme ──► TagEncoder (fitted on
        the training part) ──► TagExample (NumPy) ──► pad_examples: TagArrays ──► collate: TagBatch (torch)

Dims: B sentences, T tokens (longest sentence), U distinct words of a batch, L characters
(longest distinct word).

A batch stores the characters of each *distinct* word once (``chars`` (U, L)) and, for every
token, the row of its word (``char_index`` (B, T)): the character encoder runs over U words
instead of B*T tokens (frequent words such as "the" or "," repeat many times in a batch).

This module is torch-free (the runtime encodes sentences with it): torch is imported by :func:`collate` only.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from lstmkit.data.arrays import pad_arrays
from lstmkit.data.conll import Scheme, Sentence, convert, read_sentences, split_tag
from lstmkit.data.files import listing
from lstmkit.data.vocab import Vocab
from lstmkit.errors import DataError, ModelFolderError, warn
from lstmkit.tasks.tag.config import TagConfig

if TYPE_CHECKING:  # torch only where batches are made for the network
    from torch import Tensor

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
def check_tokens(tokens: Sequence[Any], where: str, kind: str = "token") -> list[str]:
    """``tokens`` as a list of non-empty strings: a bare string (not split into tokens), an element that
    is not a string, or an empty / whitespace-only one raises :class:`DataError` naming it."""
    if isinstance(tokens, str):
        raise DataError(
            f"{where}: the {kind}s are one string {tokens[:30]!r}, expected a list of {kind}s (split it: .split())"
        )
    if not isinstance(tokens, (list, tuple)):
        raise DataError(f"{where}: expected a list of {kind}s, got {type(tokens).__name__}")
    for k, t in enumerate(tokens):
        if not isinstance(t, str):
            raise DataError(f"{where}: {kind} {k + 1} is {type(t).__name__}, expected a string")
        if not t.strip():
            raise DataError(f"{where}: {kind} {k + 1} is empty ({t!r}): every {kind} needs characters; drop it")
    return list(tokens)


def read_data(
    data: Any,
    cfg: TagConfig,
    what: str = "data",
    fmt: str | None = None,
    tag_column: int | None = None,
    tag: str | None = None,
) -> tuple[list[Sentence], str]:
    """Tagged sentences of a file (read with ``cfg``'s format, tag column and CoNLL-U tag unless
    given) or of ``[Sentence]`` / ``[(tokens, tags)]`` (lists of strings); returns them and a name
    for messages. An item of another shape raises :class:`DataError` naming it."""
    if isinstance(data, (str, os.PathLike)):
        fmt = fmt or cfg.format
        col = cfg.tag_column if tag_column is None else tag_column
        sents = read_sentences(os.fspath(data), fmt, col, tag or cfg.tag)  # type: ignore[arg-type]
        return sents, os.fspath(data)
    if not isinstance(data, (list, tuple)):
        raise DataError(
            f"{what}: expected a CoNLL / CoNLL-U file (a path) or a list of (tokens, tags) pairs, "
            f"got {type(data).__name__}"
        )
    out = []
    for i, item in enumerate(data):
        where = f"{what}: sentence {i + 1}"
        if isinstance(item, Sentence):
            toks, tags = check_tokens(item.tokens, where), item.tags
        elif isinstance(item, (list, tuple)) and len(item) == 2:
            toks, tags = check_tokens(item[0], where), check_tokens(item[1], where, "tag")
        else:
            got = (
                f"a {len(item)}-item {type(item).__name__}" if isinstance(item, (list, tuple)) else type(item).__name__
            )
            raise DataError(f"{where}: expected a (tokens, tags) pair, got {got}")
        if not toks:
            raise DataError(f"{where}: no tokens")
        if tags is None or len(toks) != len(tags):
            raise DataError(f"{where}: {len(toks)} tokens but {0 if tags is None else len(tags)} tags")
        out.append(item if isinstance(item, Sentence) else Sentence(toks, tags, [i + 1] * len(toks)))
    if not out:
        raise DataError(f"{what}: no sentences")
    return out, what


def cut_long(sentences: Sequence[Sentence], max_len: int | None) -> tuple[list[Sentence], list[Sentence]]:
    """Sentences of at most ``max_len`` tokens (``--max-len``; None: no limit): a longer one becomes
    consecutive pieces (tokens, tags, lines and columns cut alike). Returns them and the long ones
    (for :func:`warn_long`)."""
    long = [s for s in sentences if max_len is not None and len(s.tokens) > max_len]
    if max_len is None or not long:
        return list(sentences), []
    out = []
    for s in sentences:
        if len(s.tokens) <= max_len:
            out.append(s)
            continue
        for a in range(0, len(s.tokens), max_len):
            b = a + max_len
            out.append(
                Sentence(
                    s.tokens[a:b],
                    s.tags[a:b] if s.tags is not None else None,
                    s.lines[a:b],
                    s.columns[a:b] if s.columns else None,
                    sep=s.sep,
                )
            )
    return out, long


def warn_long(long: Sequence[Sentence], total: int, max_len: int | None, source: str, first: str = "") -> None:
    """The one warning line about sentences over ``--max-len`` (none: nothing to say); ``first`` names
    the first of them (default: its line)."""
    if not long or max_len is None:
        return
    top = max(len(s.tokens) for s in long)
    where = first or (f"line {long[0].lines[0]}" if long[0].lines else "")
    warn(
        f"{source}: {len(long)} of {total} sentences are longer than --max-len {max_len} tokens: each is cut "
        f"into pieces of at most {max_len} (the longest has {top} tokens{'; first: ' + where if where else ''})"
    )


def check_known_tags(
    sents: Sequence[Sentence],
    tags: Sequence[str],
    chunks: bool,
    source: str,
    from_file: bool = True,
    known_as: str = "the model knows",
) -> None:
    """Raise :class:`DataError` for a tag of ``sents`` (in the data's scheme) that the model's ``tags``
    cannot give: an entity type never seen in training (chunk tags), or a plain label never seen. The
    message names the file and line (``from_file``) or the sentence and token, and the tag as written."""
    known = {split_tag(t)[1] for t in tags if t != "O"} if chunks else set(tags)
    for i, s in enumerate(sents):
        for k, t in enumerate(s.tags or []):
            if (t == "O" and chunks) or (split_tag(t)[1] if chunks else t) in known:
                continue
            where = f"{source}:{s.lines[k]}" if from_file else f"{source}: sentence {i + 1}, token {k + 1}"
            what = f"entity type {split_tag(t)[1]!r} (tag {t!r})" if chunks else f"tag {t!r}"
            raise DataError(f"{where}: {what} was not seen in training ({known_as}: {listing(sorted(known))})")


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
    """One encoded sentence: ``words``, ``casing``, ``tags`` (T,) int64, ``singleton`` (T,) bool
    (a word seen once in training: word dropout candidate) and the char ids of each token."""

    words: np.ndarray
    casing: np.ndarray
    tags: np.ndarray
    singleton: np.ndarray
    chars: tuple[tuple[int, ...], ...]


class TagArrays(NamedTuple):
    """A padded batch as NumPy arrays, the fields of :class:`TagBatch`: words, casing, tags, char_index
    (B, T) int64; mask, singleton (B, T) bool; lengths (B,) int64; chars (U, L) int64; char_lengths (U,) int64."""

    words: np.ndarray
    casing: np.ndarray
    tags: np.ndarray
    mask: np.ndarray
    singleton: np.ndarray
    lengths: np.ndarray
    chars: np.ndarray
    char_lengths: np.ndarray
    char_index: np.ndarray


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
            raise DataError(
                f"{where}: tag {e.args[0]!r} was not seen in training (model tags: {listing(self.tags)})"
            ) from None

    def encode(self, tokens: Sequence[str], tags: Sequence[str] | None = None, where: str = "input") -> TagExample:
        """One sentence -> :class:`TagExample` (tags all 0 when ``tags`` is None); an empty sentence or
        token raises :class:`DataError` (an empty word has no characters for the character encoder)."""
        if not tokens:
            raise DataError(f"{where}: empty sentence")
        check_tokens(tokens, where)
        normed = [self.normalise(t) for t in tokens]
        n = len(tokens)
        return TagExample(
            words=np.asarray(self.words.encode(normed), dtype=np.int64),
            casing=np.asarray([casing(t) for t in tokens], dtype=np.int64),
            tags=np.asarray(self.tag_ids(tags, where) if tags is not None else [0] * n, dtype=np.int64),
            singleton=np.asarray([w in self.singletons for w in normed], dtype=bool),
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


def pad_examples(examples: Sequence[TagExample]) -> TagArrays:
    """Pad a list of examples into :class:`TagArrays` (distinct words' characters stored once)."""
    words, lengths = pad_arrays([e.words for e in examples])  # (B, T), (B,)
    casing_ids, _ = pad_arrays([e.casing for e in examples])  # (B, T)
    tags, _ = pad_arrays([e.tags for e in examples])  # (B, T)
    singleton, _ = pad_arrays([e.singleton for e in examples], padding_value=False)  # (B, T)
    mask = np.arange(words.shape[1])[None, :] < lengths[:, None]  # (B, T)
    rows: dict[tuple[int, ...], int] = {}
    char_index = np.zeros_like(words)  # (B, T): row of each token's word in `chars`
    for b, e in enumerate(examples):
        char_index[b, : len(e.chars)] = [rows.setdefault(c, len(rows)) for c in e.chars]
    distinct = [np.asarray(c, dtype=np.int64) for c in rows]  # U char tuples, in first-seen order
    chars, char_lengths = pad_arrays(distinct)  # (U, L), (U,)
    return TagArrays(words, casing_ids, tags, mask, singleton, lengths, chars, char_lengths, char_index)


def to_batch(arrays: TagArrays) -> TagBatch:
    """:class:`TagArrays` as the network's :class:`TagBatch` of tensors (sharing the arrays' memory)."""
    import torch

    return TagBatch(*(torch.from_numpy(a) for a in arrays))


def collate(examples: list[TagExample]) -> TagBatch:
    """Pad a list of examples into a :class:`TagBatch` of tensors (:func:`pad_examples`)."""
    return to_batch(pad_examples(examples))
