"""Parallel text for translation: reading sentence-aligned pairs and turning text into ids.

Pairs come from two line-aligned files (line ``i`` of the source with line ``i`` of the target), from
one TSV file of ``source<TAB>target`` lines, or from Python strings.

* Line counts of two files must match (a :class:`DataError` names both files and both counts).
* A pair where either side is empty (or only spaces) is skipped and counted (one warning).
* A TSV line needs exactly one tab; a first line ``source<TAB>target`` (or ``src``/``tgt``) is a header
  and skipped.
* Sentences longer than ``max_length`` tokens are truncated, with one warning giving the count.

Lines are read with :func:`lstmkit.data.files.read_lines` (UTF-8 checked line by line, the line
named; UTF-16 with a byte-order mark decoded; folders, binary files and empty input named as such).
Warnings are one line ``warning: ...`` on stderr.

Tokenisation (:class:`TextCodec`) builds on the tokenizers of :mod:`lstmkit.data.text`:

* ``"bpe"``: :class:`~lstmkit.data.text.BpeTokenizer` trained ``reversible`` (spaces kept as ``▁``,
  punctuation split off), so ``decode(encode(s)) == s`` for text whose characters were seen in training;
* ``"whitespace"``: :class:`~lstmkit.data.text.WhitespaceTokenizer` (pre-tokenised data) and ids from
  :class:`lstmkit.data.vocab.Vocab`; decoding joins words with single spaces.

Both reserve ``<pad>=0, <unk>=1, <s>=2, </s>=3``. Source and target get one shared codec or one each.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

from lstmkit.data.files import read_lines, short
from lstmkit.data.text import BpeTokenizer, WhitespaceTokenizer, tokenizer_from_json, tokenizer_to_json
from lstmkit.data.vocab import Vocab
from lstmkit.errors import DataError, ModelFolderError, warn

TokenizerMode = Literal["bpe", "whitespace"]
PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
SPECIALS: tuple[str, ...] = (PAD, UNK, BOS, EOS)
HEADER = ({"source", "src"}, {"target", "tgt", "trg"})  # a first TSV line of these names is a header
SIDE = "sentences (one per line)"


# ------------------------------------------------------------------------------------------- reading
@dataclass
class ParallelText:
    """Aligned sentence pairs.

    sources/targets: the kept sentences (stripped); line_numbers: 1-based line (or position) of each
    kept pair; skipped_empty: pairs dropped because a side was empty; unit: what line_numbers count
    ("line" of a file, "item" of a list), for messages.
    """

    sources: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    line_numbers: list[int] = field(default_factory=list)
    skipped_empty: int = 0
    unit: str = "line"

    def __len__(self) -> int:
        return len(self.sources)

    def add(self, source: str, target: str, line: int) -> None:
        """Keep the pair (stripped), or count it as skipped when a side is empty."""
        s, t = source.strip(), target.strip()
        if not s or not t:
            self.skipped_empty += 1
            return
        self.sources.append(s)
        self.targets.append(t)
        self.line_numbers.append(line)

    def subset(self, indices: Sequence[int]) -> ParallelText:
        """The pairs at ``indices`` (a held-out split); ``skipped_empty`` is not carried over."""
        return ParallelText(
            [self.sources[i] for i in indices],
            [self.targets[i] for i in indices],
            [self.line_numbers[i] for i in indices],
            unit=self.unit,
        )

    def finish(self, name: str) -> ParallelText:
        """Refuse a set without any pair, warn once about skipped pairs; returns ``self``."""
        if not self.sources:
            raise DataError(f"{name}: no pair has text on both sides")
        if self.skipped_empty:
            warn(f"{name}: skipped {self.skipped_empty} empty line pair(s)")
        return self


def read_parallel(source: str | Path, target: str | Path) -> ParallelText:
    """Read two aligned files; different line counts -> DataError naming both counts."""
    src_lines, tgt_lines = read_lines(source, SIDE), read_lines(target, SIDE)
    if len(src_lines) != len(tgt_lines):
        raise DataError(
            f"{source} has {len(src_lines)} lines but {target} has {len(tgt_lines)}: "
            "source and target must be line-aligned"
        )
    out = ParallelText()
    for i, (s, t) in enumerate(zip(src_lines, tgt_lines), start=1):
        out.add(s, t, i)
    return out.finish(f"{source} / {target}")


def _is_header(line: str) -> bool:
    fields = [f.strip().lower() for f in line.split("\t")]
    return len(fields) == 2 and fields[0] in HEADER[0] and fields[1] in HEADER[1]


def read_tsv(path: str | Path) -> ParallelText:
    """Read ``source<TAB>target`` lines; blank lines and pairs with an empty side are skipped and counted,
    a first line ``source<TAB>target`` is a header, a line without exactly one tab is a DataError naming it."""
    out = ParallelText()
    lines = read_lines(path, "source<TAB>target lines")
    first = next(i for i, line in enumerate(lines) if line.strip())  # read_lines refuses a blank file
    header = _is_header(lines[first])
    for n, line in enumerate(lines, start=1):
        if header and n == first + 1:
            continue
        if not line.strip():
            out.skipped_empty += 1
            continue
        fields = line.split("\t")
        if len(fields) != 2:
            hint = (
                "the file must be tab-separated (two line-aligned files: --source/--target)"
                if len(fields) == 1
                else "a sentence may not contain a tab"
            )
            raise DataError(
                f"{path}: line {n}: expected source<TAB>target, found {len(fields)} tab-separated field(s): {hint}"
            )
        out.add(fields[0], fields[1], n)
    if header and not out.sources and not out.skipped_empty:
        raise DataError(f"{path}: only a header line (line {first + 1}), no sentence pairs")
    return out.finish(str(path))


def from_pairs(pairs: Sequence[Sequence[str]], name: str = "data") -> ParallelText:
    """``[(source, target), ...]`` strings as ParallelText (positions are 1-based); any other item is a
    DataError naming it."""
    if isinstance(pairs, (str, bytes)) or not isinstance(pairs, Sequence):
        raise DataError(f"{name}: expected a list of (source, target) pairs of strings, got {type(pairs).__name__}")
    out = ParallelText(unit="item")
    for i, pair in enumerate(pairs, start=1):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2 or not all(isinstance(x, str) for x in pair):
            raise DataError(f"{name}: item {i} is not a (source, target) pair of strings: {short(pair, 60)}")
        out.add(pair[0], pair[1], i)
    return out.finish(name)


# ------------------------------------------------------------------------------------------- codecs
class TextCodec:
    """Text <-> ids for one language side: a tokenizer of :mod:`lstmkit.data.text` (BPE, or whitespace
    with a :class:`Vocab`) with the four specials at ids 0-3. Build with :func:`train_codec`, save with
    :meth:`to_json`."""

    def __init__(self, tokenizer: BpeTokenizer | WhitespaceTokenizer, vocab: Vocab | None = None) -> None:
        if isinstance(tokenizer, WhitespaceTokenizer) and vocab is None:
            raise ValueError("a whitespace codec needs a vocabulary")
        self.tokenizer = tokenizer
        self.mode: TokenizerMode = "bpe" if isinstance(tokenizer, BpeTokenizer) else "whitespace"
        self.lowercase = bool(tokenizer.lowercase)
        self._vocab = vocab
        for i, name in enumerate(SPECIALS):
            if self.token_to_id(name) != i:
                raise ModelFolderError(f"special token {name} must have id {i}")
        self.pad_id, self.unk_id, self.bos_id, self.eos_id = range(4)

    def __len__(self) -> int:
        if isinstance(self.tokenizer, BpeTokenizer):
            return self.tokenizer.size()
        assert self._vocab is not None
        return len(self._vocab)

    def token_to_id(self, token: str) -> int | None:
        if isinstance(self.tokenizer, BpeTokenizer):
            return self.tokenizer.token_to_id(token)
        assert self._vocab is not None
        return self._vocab.index(token) if token in self._vocab else None

    def tokenize(self, text: str) -> list[str]:
        """Text -> token strings (no <s>/</s>)."""
        return self.tokenizer.tokenize(text)

    def encode(self, text: str) -> list[int]:
        """Text -> ids (no <s>/</s>); unknown pieces -> <unk>."""
        if isinstance(self.tokenizer, BpeTokenizer):
            return self.tokenizer.encode(text)
        assert self._vocab is not None
        return self._vocab.encode(self.tokenize(text))

    def id_tokens(self, ids: Sequence[int]) -> list[str]:
        """Ids -> token strings (for attention plots and inspect)."""
        if isinstance(self.tokenizer, BpeTokenizer):
            return [self.tokenizer.id_to_token(int(i)) or UNK for i in ids]
        assert self._vocab is not None
        return self._vocab.decode([int(i) for i in ids])

    def decode(self, ids: Sequence[int]) -> str:
        """Ids -> detokenised text; specials other than <unk> are dropped."""
        ids = [int(i) for i in ids if int(i) >= len(SPECIALS) or int(i) == self.unk_id]
        if isinstance(self.tokenizer, BpeTokenizer):
            return self.tokenizer.decode(ids).strip()
        assert self._vocab is not None
        return " ".join(self._vocab.decode(ids))

    def to_json(self) -> dict[str, Any]:
        """:func:`~lstmkit.data.text.tokenizer_to_json` (``kind``, ``lowercase``, ``bpe``), plus ``vocab``
        for whitespace."""
        out = tokenizer_to_json(self.tokenizer)
        if self._vocab is not None:
            out["vocab"] = self._vocab.to_json()
        return out

    @classmethod
    def from_json(cls, d: Any) -> TextCodec:
        """Rebuild a codec saved by :meth:`to_json`; anything malformed -> ModelFolderError (the caller
        puts the file name in front)."""
        kind = d.get("kind") if isinstance(d, dict) else None
        if kind not in ("bpe", "whitespace"):
            raise ModelFolderError(f"unknown tokenizer kind {kind!r} (bpe, whitespace)")
        try:
            tok = tokenizer_from_json(d)
            vocab = Vocab.from_json(d["vocab"]) if kind == "whitespace" else None
            assert isinstance(tok, (BpeTokenizer, WhitespaceTokenizer))
            return cls(tok, vocab)
        except ModelFolderError as err:
            raise ModelFolderError(str(err).removeprefix("tokenizer.json: ")) from None
        except (KeyError, TypeError, ValueError) as err:
            raise ModelFolderError(f"unreadable ({type(err).__name__}: {err})") from None


def train_codec(
    texts: Sequence[str],
    mode: TokenizerMode = "bpe",
    vocab_size: int = 8000,
    lowercase: bool = False,
    min_freq: int = 1,
) -> TextCodec:
    """Learn a codec from ``texts``. bpe: at most ``vocab_size`` ids; whitespace: the ``vocab_size``
    most frequent words seen ``>= min_freq`` times (plus the 4 specials)."""
    if mode == "whitespace":
        tok = WhitespaceTokenizer(lowercase)
        vocab = Vocab.build((tok.tokenize(t) for t in texts), min_freq=min_freq, max_size=vocab_size, specials=SPECIALS)
        return TextCodec(tok, vocab)
    if mode != "bpe":
        raise DataError(f"tokenizer: unknown mode {mode!r} (bpe, whitespace)")
    return TextCodec(BpeTokenizer.train(texts, vocab_size, lowercase, specials=SPECIALS, reversible=True))


def train_codecs(
    data: ParallelText,
    mode: TokenizerMode = "bpe",
    vocab_size: int = 8000,
    shared: bool = False,
    lowercase: bool = False,
    min_freq: int = 1,
) -> tuple[TextCodec, TextCodec]:
    """(source codec, target codec); ``shared`` learns one codec from both sides and returns it twice."""
    if shared:
        codec = train_codec(data.sources + data.targets, mode, vocab_size, lowercase, min_freq)
        return codec, codec
    return (
        train_codec(data.sources, mode, vocab_size, lowercase, min_freq),
        train_codec(data.targets, mode, vocab_size, lowercase, min_freq),
    )


# ------------------------------------------------------------------------------------------- examples
class PairExample(NamedTuple):
    """One training pair: source ids (S,), target ids with <s> ... </s> (T + 2,), its position in the data."""

    src: list[int]
    tgt: list[int]
    position: int


def encode_source(codec: TextCodec, text: str, max_length: int) -> tuple[list[int], bool]:
    """Source ids, truncated to ``max_length``; returns (ids, was_truncated). Empty -> [<unk>]."""
    ids = codec.encode(text) or [codec.unk_id]
    return ids[:max_length], len(ids) > max_length


def encode_pairs(
    data: ParallelText, src_codec: TextCodec, tgt_codec: TextCodec, max_length: int, name: str = "data"
) -> list[PairExample]:
    """Encode every pair; over-long sides are truncated to ``max_length`` tokens with one warning."""
    out: list[PairExample] = []
    truncated = 0
    for i, (s, t) in enumerate(zip(data.sources, data.targets)):
        src, cut_s = encode_source(src_codec, s, max_length)
        tgt = tgt_codec.encode(t)
        cut_t = len(tgt) > max_length
        truncated += bool(cut_s or cut_t)
        out.append(PairExample(src, [tgt_codec.bos_id] + tgt[:max_length] + [tgt_codec.eos_id], i))
    if truncated:
        warn(
            f"{name}: {truncated} sentence pair(s) longer than --max-length {max_length} tokens were truncated "
            f"to {max_length} tokens"
        )
    return out
