"""Parallel text for translation: reading sentence-aligned files and turning text into ids.

Files hold one sentence per line, line ``i`` of the source aligned with line ``i`` of the target.

* Line counts must match (a :class:`DataError` names both files and both counts).
* A pair where either side is empty (or only spaces) is skipped and counted.
* Sentences longer than ``max_length`` tokens are truncated, with one warning giving the count.

Tokenisation (:class:`TextCodec`) is either

* ``"bpe"``: Hugging Face ``tokenizers`` byte-pair encoding with a Metaspace pre-tokeniser (spaces kept as
  ``▁``), so ``decode(encode(s)) == s`` for text whose characters were seen in training; or
* ``"whitespace"``: words split on spaces (for pre-tokenised data), ids from :class:`lstmkit.data.vocab.Vocab`;
  decoding joins words with single spaces.

Both reserve ``<pad>=0, <unk>=1, <s>=2, </s>=3``. Source and target get one shared codec or one each.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from lstmkit.data.vocab import Vocab
from lstmkit.errors import DataError, ModelFolderError

log = logging.getLogger("lstmkit.translate")

TokenizerMode = Literal["bpe", "whitespace"]
PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
SPECIALS: tuple[str, ...] = (PAD, UNK, BOS, EOS)


# ------------------------------------------------------------------------------------------- reading
def read_lines(path: str | Path) -> list[str]:
    """All lines of a UTF-8 text file, without line ends. Missing, unreadable or empty -> DataError."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: file not found")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        line = p.read_bytes()[: err.start].count(b"\n") + 1
        raise DataError(f"{p}: line {line}: not valid UTF-8") from None
    except OSError as err:
        raise DataError(f"{p}: cannot read ({err.strerror})") from None
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        raise DataError(f"{p}: file is empty")
    return lines


@dataclass
class ParallelText:
    """Aligned sentence pairs read from two files.

    sources/targets: the kept sentences (stripped); line_numbers: 1-based line of each kept pair;
    skipped_empty: pairs dropped because a side was empty.
    """

    sources: list[str]
    targets: list[str]
    line_numbers: list[int]
    skipped_empty: int = 0

    def __len__(self) -> int:
        return len(self.sources)


def read_parallel(source: str | Path, target: str | Path) -> ParallelText:
    """Read two aligned files; different line counts -> DataError naming both counts."""
    src_lines, tgt_lines = read_lines(source), read_lines(target)
    if len(src_lines) != len(tgt_lines):
        raise DataError(
            f"{source} has {len(src_lines)} lines but {target} has {len(tgt_lines)}: "
            "source and target must be line-aligned"
        )
    out = ParallelText([], [], [])
    for i, (s, t) in enumerate(zip(src_lines, tgt_lines), start=1):
        s, t = s.strip(), t.strip()
        if not s or not t:
            out.skipped_empty += 1
            continue
        out.sources.append(s)
        out.targets.append(t)
        out.line_numbers.append(i)
    if not out.sources:
        raise DataError(f"{source} / {target}: no line pair has text on both sides")
    if out.skipped_empty:
        log.warning("%s / %s: skipped %d empty line pair(s)", source, target, out.skipped_empty)
    return out


# ------------------------------------------------------------------------------------------- codecs
class TextCodec:
    """Text <-> ids for one language side. Build with :func:`train_codec`, save with :meth:`to_json`."""

    def __init__(
        self, mode: TokenizerMode, lowercase: bool, *, tokenizer: Tokenizer | None = None, vocab: Vocab | None = None
    ) -> None:
        self.mode = mode
        self.lowercase = lowercase
        self._tok = tokenizer
        self._vocab = vocab
        for i, name in enumerate(SPECIALS):
            if self.token_to_id(name) != i:
                raise ModelFolderError(f"tokenizer: special token {name} must have id {i}")
        self.pad_id, self.unk_id, self.bos_id, self.eos_id = range(4)

    def __len__(self) -> int:
        if self._tok is not None:
            return self._tok.get_vocab_size(with_added_tokens=True)
        return len(self._vocab)

    def token_to_id(self, token: str) -> int | None:
        if self._tok is not None:
            return self._tok.token_to_id(token)
        return self._vocab.index(token) if token in self._vocab else None

    def tokenize(self, text: str) -> list[str]:
        """Text -> token strings (no <s>/</s>)."""
        if self._tok is not None:
            return self._tok.encode(text, add_special_tokens=False).tokens
        return (text.lower() if self.lowercase else text).split()

    def encode(self, text: str) -> list[int]:
        """Text -> ids (no <s>/</s>); unknown pieces -> <unk>."""
        if self._tok is not None:
            return self._tok.encode(text, add_special_tokens=False).ids
        return self._vocab.encode(self.tokenize(text))

    def id_tokens(self, ids: Sequence[int]) -> list[str]:
        """Ids -> token strings (for attention plots)."""
        if self._tok is not None:
            return [self._tok.id_to_token(int(i)) or UNK for i in ids]
        return self._vocab.decode([int(i) for i in ids])

    def decode(self, ids: Sequence[int]) -> str:
        """Ids -> detokenised text; specials are dropped."""
        ids = [int(i) for i in ids if int(i) >= len(SPECIALS) or int(i) == self.unk_id]
        if self._tok is not None:
            return self._tok.decode(ids, skip_special_tokens=False).strip()
        return " ".join(self._vocab.decode(ids))

    def to_json(self) -> dict[str, Any]:
        body = json.loads(self._tok.to_str()) if self._tok is not None else self._vocab.to_json()
        return {"mode": self.mode, "lowercase": self.lowercase, "model": body}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TextCodec:
        """Rebuild a codec saved by :meth:`to_json`; anything malformed -> ModelFolderError."""
        mode = d.get("mode") if isinstance(d, dict) else None
        if mode not in ("bpe", "whitespace"):
            raise ModelFolderError(f"tokenizer json: unknown mode {mode!r} (bpe, whitespace)")
        try:
            lowercase, body = bool(d["lowercase"]), d["model"]
            if mode == "bpe":
                return cls("bpe", lowercase, tokenizer=Tokenizer.from_str(json.dumps(body)))
            return cls("whitespace", lowercase, vocab=Vocab.from_json(body))
        except ModelFolderError:
            raise
        except Exception as err:  # KeyError, LstmkitError from Vocab, tokenizers' own exceptions
            raise ModelFolderError(f"tokenizer json: unreadable ({type(err).__name__}: {err})") from None


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
        words = ((t.lower() if lowercase else t).split() for t in texts)
        vocab = Vocab.build(words, min_freq=min_freq, max_size=vocab_size, specials=SPECIALS)
        return TextCodec("whitespace", lowercase, vocab=vocab)
    if mode != "bpe":
        raise DataError(f"tokenizer: unknown mode {mode!r} (bpe, whitespace)")
    tok = Tokenizer(models.BPE(unk_token=UNK))
    norms = [normalizers.NFKC()] + ([normalizers.Lowercase()] if lowercase else [])
    tok.normalizer = normalizers.Sequence(norms)
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Metaspace(), pre_tokenizers.Punctuation()])
    tok.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=min_freq, special_tokens=list(SPECIALS), show_progress=False
    )
    tok.train_from_iterator(texts, trainer)
    return TextCodec("bpe", lowercase, tokenizer=tok)


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
    """One training pair: source ids (S,), target ids with <s> ... </s> (T + 2,), and its index."""

    src: list[int]
    tgt: list[int]
    index: int


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
        log.warning(
            "%s: %d sentence pair(s) longer than --max-length %d tokens were truncated", name, truncated, max_length
        )
    return out
