"""Text readers, tokenizers and a pretrained-embeddings loader (classification and language models).

Readers decode each line as UTF-8 on its own so that a bad byte is reported with its line number, and
raise :class:`~lstmkit.errors.DataError` naming the file, line or column at fault.

Labelled formats read by :func:`read_labelled`:

* CSV / TSV with a header row (``--text-column`` / ``--label-column``; GLUE's SST-2 ``train.tsv`` works as
  is with ``sentence`` / ``label``);
* headerless lines ``label<TAB>text``.

Tokenizers (all ``tokenize(text) -> list[str]`` and JSON-serialisable via :func:`tokenizer_to_json`):
``word`` (regex, optional lowercase), ``whitespace`` (pre-tokenised text), ``char``, and ``bpe``
(Hugging Face ``tokenizers`` byte-pair encoding trained on the training texts).
"""

from __future__ import annotations

import csv
import json
import math
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple, Protocol

import torch

from lstmkit.data.vocab import PAD, UNK, Vocab
from lstmkit.errors import DataError

TextFormat = Literal["auto", "csv", "tsv", "lines"]
TokenizerKind = Literal["word", "whitespace", "char", "bpe"]

TEXT_COLUMN_GUESSES = ("text", "sentence", "review", "content", "sequence")
LABEL_COLUMN_GUESSES = ("label", "labels", "class", "target", "y")


# ============================================================================================ reading
def read_lines(path: str | Path, allow_empty: bool = False) -> list[str]:
    """The file's lines (without line ends), each decoded as UTF-8; ``-`` reads standard input.

    Raises DataError for a missing file, an empty file (unless ``allow_empty``) or a line that is not
    valid UTF-8 (``"train.txt: line 12 is not valid UTF-8 (byte 0xff at column 5)"``).
    """
    p = Path(path)
    if str(path) == "-":
        p, raw = Path("<stdin>"), sys.stdin.buffer.read()
    elif not p.is_file():
        raise DataError(f"{p}: file not found")
    else:
        raw = p.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):  # UTF-8 byte-order mark
        raw = raw[3:]
    if not raw.strip() and not allow_empty:
        raise DataError(f"{p}: empty file")
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # final newline
    out = []
    for n, b in enumerate(lines, start=1):
        try:
            out.append(b.decode("utf-8").rstrip("\r"))
        except UnicodeDecodeError as e:
            raise DataError(
                f"{p}: line {n} is not valid UTF-8 (byte 0x{b[e.start]:02x} at column {e.start + 1})"
            ) from None
    return out


def read_text(path: str | Path) -> str:
    """The whole file as one string (UTF-8 checked line by line; newline-terminated lines)."""
    lines = read_lines(path)
    return "\n".join(lines) + "\n"


class LabelledText(NamedTuple):
    """One labelled example: the raw text, its label (as a string) and its 1-based line in the file."""

    text: str
    label: str
    line: int


def _sniff_format(path: Path, first: str) -> Literal["csv", "tsv"]:
    if path.suffix.lower() == ".csv":
        return "csv"
    if path.suffix.lower() == ".tsv" or "\t" in first:
        return "tsv"
    return "csv"


def _pick_column(header: list[str], wanted: str | None, guesses: Sequence[str], what: str, path: Path) -> int:
    if wanted is not None:
        if wanted not in header:
            raise DataError(f"{path}: column '{wanted}' not found (columns: {', '.join(header)})")
        return header.index(wanted)
    lower = [h.strip().lower() for h in header]
    for g in guesses:
        if g in lower:
            return lower.index(g)
    raise DataError(f"{path}: no {what} column found (columns: {', '.join(header)}); name it with --{what}-column")


def _rows(lines: list[str], fmt: Literal["csv", "tsv"], keep_blank: bool = False) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) for each row, blank rows skipped unless ``keep_blank`` (then they
    come as ``[]``); TSV is read without quoting (as GLUE writes it)."""
    if fmt == "tsv":
        for n, line in enumerate(lines, start=1):
            if line.strip():
                yield n, line.split("\t")
            elif keep_blank:
                yield n, []
        return
    reader = csv.reader(lines)
    try:
        for fields in reader:
            if fields and any(f.strip() for f in fields):
                yield reader.line_num, fields
            elif keep_blank:
                yield reader.line_num, []
    except csv.Error as e:
        raise DataError(f"line {reader.line_num}: {e}") from None


def read_labelled(
    path: str | Path,
    text_column: str | None = None,
    label_column: str | None = None,
    fmt: TextFormat = "auto",
) -> list[LabelledText]:
    """Read labelled texts from CSV/TSV with a header, or from ``label<TAB>text`` lines.

    ``fmt="auto"``: if the first line names a label column (``--label-column`` or one of
    ``label, class, target, ...``) the file is a table (CSV, or TSV for ``.tsv``/tab-separated files);
    otherwise each line is ``label<TAB>text``.
    """
    p = Path(path)
    lines = read_lines(p)
    first = lines[0]
    if fmt == "auto":
        table = _sniff_format(p, first)
        header = next(iter(_rows([first], table)), (0, []))[1]
        names = [h.strip().lower() for h in header]
        has_header = (label_column in header) if label_column else any(g in names for g in LABEL_COLUMN_GUESSES)
        if text_column is not None or label_column is not None:
            has_header = True  # named columns only make sense with a header; a miss is reported below
        fmt = table if has_header else "lines"
    if fmt == "lines":
        return _read_label_tab_text(p, lines)
    rows = _rows(lines, fmt)
    try:
        _, header = next(rows)
    except StopIteration:
        raise DataError(f"{p}: file is empty") from None
    header = [h.strip() for h in header]
    ti = _pick_column(header, text_column, TEXT_COLUMN_GUESSES, "text", p)
    li = _pick_column(header, label_column, LABEL_COLUMN_GUESSES, "label", p)
    out = []
    try:
        for n, fields in rows:
            if len(fields) != len(header):
                raise DataError(f"{p}: line {n} has {len(fields)} fields, the header has {len(header)}")
            label = fields[li].strip()
            if label == "":
                raise DataError(f"{p}: line {n}: empty label in column '{header[li]}'")
            out.append(LabelledText(fields[ti].strip(), label, n))
    except DataError as e:
        msg = str(e)
        raise DataError(msg if msg.startswith(str(p)) else f"{p}: {msg}") from None
    if not out:
        raise DataError(f"{p}: no examples after the header")
    return out


def _read_label_tab_text(p: Path, lines: list[str]) -> list[LabelledText]:
    out = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if "\t" not in line:
            raise DataError(f"{p}: line {n}: expected 'label<TAB>text' (or a header naming the columns)")
        label, text = line.split("\t", 1)
        if not label.strip():
            raise DataError(f"{p}: line {n}: empty label")
        out.append(LabelledText(text.strip(), label.strip(), n))
    if not out:
        raise DataError(f"{p}: file is empty")
    return out


def read_unlabelled(path: str | Path, text_column: str | None = None, fmt: TextFormat = "auto") -> list[str]:
    """Texts to predict, one per input row, in order (empty lines give empty texts): one per line,
    or a CSV/TSV column; ``-`` reads standard input as lines.

    ``fmt="auto"``: a ``.csv``/``.tsv`` file whose first line names a text column (``--text-column``
    or one of ``text, sentence, ...``) is read as a table; anything else as one text per line.
    """
    p = Path(path)
    lines = read_lines(path)
    table = _sniff_format(p, lines[0])
    if fmt == "auto":
        header = [h.strip().lower() for h in lines[0].split("\t" if table == "tsv" else ",")]
        named = text_column is not None or any(g in header for g in TEXT_COLUMN_GUESSES)
        fmt = table if named and p.suffix.lower() in (".csv", ".tsv") else "lines"
    if fmt == "lines":
        return [ln.strip() for ln in lines]
    rows = _rows(lines, fmt, keep_blank=True)
    header = [h.strip() for h in next(rows)[1]]
    ti = _pick_column(header, text_column, TEXT_COLUMN_GUESSES, "text", p)
    out = []
    for n, fields in rows:
        if fields and ti >= len(fields):
            raise DataError(f"{p}: line {n} has {len(fields)} fields, the header has {len(header)}")
        out.append(fields[ti].strip() if fields else "")
    if not out:
        raise DataError(f"{p}: no examples after the header")
    return out


_NUM_SPLIT = re.compile(r"[\s,;]+")


def parse_numbers(text: str, where: str) -> list[float]:
    """A sequence of numbers separated by spaces, commas or semicolons; NaN/inf/garbage -> DataError."""
    parts = [s for s in _NUM_SPLIT.split(text.strip()) if s]
    if not parts:
        raise DataError(f"{where}: empty number sequence")
    out = []
    for s in parts:
        try:
            x = float(s)
        except ValueError:
            raise DataError(f"{where}: {s!r} is not a number") from None
        if not math.isfinite(x):
            raise DataError(f"{where}: non-finite value {s!r}")
        out.append(x)
    return out


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
            for i in targets:
                vectors[i] = vec
            if word in stoi:
                exact.add(stoi[word])
    if dim is None:
        raise DataError(f"{p}: file is empty")
    g = torch.Generator().manual_seed(seed)
    weight = torch.randn(len(vocab), dim, generator=g) * 0.1  # (V, D)
    for i, vec in vectors.items():
        weight[i] = torch.tensor(vec)
    if vocab.pad_id is not None:
        weight[vocab.pad_id] = 0.0
    return Embeddings(weight, len(vectors))
