"""CoNLL column files, CoNLL-U files and raw text for sequence labelling; tagging schemes.

Readers return :class:`Sentence` objects (tokens, tags, the line number and columns of each token):

- :func:`read_conll`: one token per line, whitespace- or tab-separated columns (token in
  ``token_column``, tag in ``tag_column``, default the last), blank lines between sentences,
  ``-DOCSTART-`` lines skipped. Every token line must have the same number of columns.
- :func:`read_conllu`: CoNLL-U (10 tab-separated columns), tag = UPOS or XPOS; comment lines,
  multi-word token ranges (``3-4``) and empty nodes (``8.1``) skipped.
- :func:`read_text`: one sentence per line, whitespace-tokenised, no tags.
- :func:`read_for_tagging`: input to tag (text, conll or conllu) where nothing is dropped: empty lines
  of text are empty sentences, and the lines that are not tokens (``-DOCSTART-``, CoNLL-U comments,
  multi-word ranges, empty nodes) are kept in :attr:`Sentence.carried` to be written back in place.

Schemes: IOB1 (``I-X`` starts a chunk; ``B-X`` only right after an ``X`` chunk), IOB2/BIO
(every chunk starts with ``B-X``), IOBES (``S-X`` single-token chunk, ``E-X`` chunk end) and
``none`` (plain labels such as POS tags). :func:`detect_scheme` infers the scheme of a data set and
rejects a mix; :func:`convert` maps tags between schemes through their chunks (spans), which are
read with seqeval's conlleval-compatible rules (:func:`tags_to_spans`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NamedTuple

from seqeval.metrics.sequence_labeling import get_entities

from lstmkit.data.files import read_lines
from lstmkit.errors import DataError

Scheme = Literal["IOB1", "IOB2", "IOBES", "none"]
SCHEMES: tuple[str, ...] = ("IOB1", "IOB2", "IOBES", "none")
DOCSTART = "-DOCSTART-"
CONLLU_TAG_COLUMNS = {"upos": 3, "xpos": 4}


@dataclass
class Sentence:
    """One sentence: ``tokens``, ``tags`` (None when the file has none), the 1-based ``lines`` of its
    tokens and, for column files, every column of each token line (``columns``, joined by ``sep``).

    ``carried``: lines of the file that are not tokens, kept in place by :func:`read_for_tagging`:
    ``(i, line)`` stands before token ``i`` (``i == len(tokens)``: after the last token).
    """

    tokens: list[str]
    tags: list[str] | None
    lines: list[int]
    columns: list[list[str]] | None = None
    carried: list[tuple[int, str]] = field(default_factory=list)
    sep: str = " "


class Span(NamedTuple):
    """A chunk: entity ``type``, first token ``start`` and last token ``end`` (inclusive)."""

    type: str
    start: int
    end: int


# --------------------------------------------------------------------------------------- readers
def _lines(path: str | Path, what: str) -> list[str]:
    """The lines of a user's file (``-``: standard input): UTF-8 or UTF-16 with a byte-order mark, ``\n``
    or ``\r\n``; a folder, binary data (a NUL byte), a line that is not UTF-8 or a file without text
    raise :class:`DataError` naming the file (and line and column). ``what``: what the file should hold."""
    return read_lines(path, what)


def _split_columns(line: str) -> list[str]:
    """Tab-separated if the line has a tab (tokens may then hold spaces), else whitespace-separated."""
    line = line.rstrip("\r\n")
    if "\t" in line:
        return [c.strip() for c in line.strip().split("\t")]
    return line.split()


def read_conll(
    path: str | Path,
    tag_column: int | None = -1,
    token_column: int = 0,
    require_tags: bool = True,
    keep: bool = False,
) -> list[Sentence]:
    """Read a CoNLL column file. ``tag_column=None`` (or a one-column file without
    ``require_tags``) gives sentences without tags. Bad lines raise :class:`DataError`.
    ``keep``: each ``-DOCSTART-`` line becomes an empty sentence carrying it (see :func:`read_for_tagging`)."""
    lines = _lines(path, "CoNLL lines (a token and its columns per line)")
    sentences: list[Sentence] = []
    cur: list[tuple[int, list[str]]] = []
    n_cols: int | None = None

    def flush() -> None:
        if cur:
            sentences.append(_make_sentence(path, cur, token_column, tag_column, n_cols or 1, require_tags))
            sentences[-1].sep = "\t" if "\t" in lines[cur[0][0] - 1] else " "
            cur.clear()

    for no, line in enumerate(lines, start=1):
        cols = _split_columns(line)
        if not cols:
            flush()
            continue
        if cols[0] == DOCSTART:
            flush()
            if keep:
                sentences.append(Sentence([], None, [], [], carried=[(0, line.rstrip())]))
            continue
        if n_cols is None:
            n_cols = len(cols)
        elif len(cols) != n_cols:
            raise DataError(f"{path}:{no}: expected {n_cols} columns (as on the first token line), found {len(cols)}")
        cur.append((no, cols))
    flush()
    if not any(s.tokens for s in sentences):
        raise DataError(f"{path}: no sentences found (only -DOCSTART- or blank lines)")
    tagged = [s for s in sentences if s.tags]
    if tagged and require_tags and all(t == "_" for s in tagged for t in s.tags or []):
        raise DataError(
            f"{path}: the tag column ({tag_column}) holds only '_': no tags there "
            "(a CoNLL-U file? pass --format conllu; else choose the column with --tag-column)"
        )
    return sentences


def _make_sentence(path, rows, token_column, tag_column, n_cols, require_tags) -> Sentence:
    """One sentence from its (line number, columns) rows; checks the column indices."""
    for name, col in (("token column", token_column), ("tag column", tag_column)):
        if col is not None and not -n_cols <= col < n_cols:
            raise DataError(f"{path}: {name} {col} is out of range (the file has {n_cols} columns)")
    tags = None
    if tag_column is not None and (n_cols > 1 or require_tags):
        if n_cols == 1:
            first = rows[0][1][0]
            hint = next(
                (
                    f" (the line {first[:40]!r} holds {name}: CoNLL columns are separated by spaces or tabs)"
                    for sep, name in ((",", "commas"), (";", "';'"), ("|", "'|'"))
                    if sep in first
                ),
                "",
            )
            raise DataError(f"{path}:{rows[0][0]}: only one column (tokens); tags are missing{hint}")
        tags = [c[tag_column] for _, c in rows]
    return Sentence(
        tokens=[c[token_column] for _, c in rows], tags=tags, lines=[n for n, _ in rows], columns=[c for _, c in rows]
    )


def read_conllu(path: str | Path, tag: Literal["upos", "xpos"] = "upos", keep: bool = False) -> list[Sentence]:
    """Read a CoNLL-U file; tags from the UPOS or XPOS column.

    ``keep`` (input to tag): comment lines, multi-word ranges and empty nodes are kept in place in
    :attr:`Sentence.carried`, a block of comments alone is an empty sentence, and tags are not read.
    """
    if tag not in CONLLU_TAG_COLUMNS:
        raise DataError(f"--tag must be upos or xpos, not {tag!r}")
    col = CONLLU_TAG_COLUMNS[tag]
    sentences: list[Sentence] = []
    cur: list[tuple[int, list[str]]] = []
    carried: list[tuple[int, str]] = []
    lines = _lines(path, "CoNLL-U lines (10 tab-separated columns per word)")
    for no, line in enumerate(lines + [""], start=1):
        if not line.strip():
            if cur or (keep and carried):
                sentences.append(_make_sentence(path, cur, 1, None if keep else col, 10, not keep))
                sentences[-1].carried, sentences[-1].sep = carried, "\t"
                cur, carried = [], []
            continue
        if line.startswith("#"):
            carried.append((len(cur), line.rstrip()))
            continue
        cols = line.rstrip("\r\n").split("\t")
        if len(cols) != 10:
            hint = " (separated by spaces: CoNLL-U needs tabs)" if len(line.split()) == 10 else ""
            raise DataError(f"{path}:{no}: expected 10 tab-separated CoNLL-U columns, found {len(cols)}{hint}")
        if "-" in cols[0] or "." in cols[0]:  # multi-word token range or empty node
            carried.append((len(cur), line.rstrip("\r\n")))
            continue
        if not cols[0].strip().isdigit():
            raise DataError(f"{path}:{no}: column 1 (ID) is {cols[0][:20]!r}, not a word number (1, 2, ...)")
        if not cols[1].strip():
            raise DataError(f"{path}:{no}: column 2 (FORM) is empty: every word needs its text")
        if not keep and cols[col] == "_":
            raise DataError(f"{path}:{no}: no {tag.upper()} tag ('_') for token {cols[1]!r}")
        cur.append((no, cols))
    if not sentences:
        raise DataError(f"{path}: no sentences found")
    return sentences


def read_text(path: str | Path, keep_empty: bool = False) -> list[Sentence]:
    """Raw text: one sentence per line, whitespace-tokenised; no tags. Blank lines are skipped, or
    with ``keep_empty`` are empty sentences (one sentence per line of the file)."""
    sentences = []
    for no, line in enumerate(_lines(path, "sentences (one per line)"), start=1):
        toks = line.split()
        if toks or keep_empty:
            sentences.append(Sentence(tokens=toks, tags=None, lines=[no] * len(toks), columns=[[t] for t in toks]))
    return sentences


def read_sentences(
    path: str | Path,
    fmt: Literal["conll", "conllu", "text"],
    tag_column: int | None = -1,
    conllu_tag: Literal["upos", "xpos"] = "upos",
    require_tags: bool = True,
) -> list[Sentence]:
    """Dispatch on ``fmt``: ``conll`` (:func:`read_conll`), ``conllu``, ``text``."""
    if fmt == "conll":
        return read_conll(path, tag_column=tag_column, require_tags=require_tags)
    if fmt == "conllu":
        return read_conllu(path, conllu_tag)
    if fmt == "text":
        if require_tags:
            raise DataError(f"{path}: raw text has no tags; training and evaluation need --format conll or conllu")
        return read_text(path)
    raise DataError(f"unknown format {fmt!r} (choose conll, conllu or text)")


def read_for_tagging(path: str | Path, fmt: Literal["conll", "conllu", "text"]) -> list[Sentence]:
    """Sentences to tag, none dropped and every other line kept in place (``-`` reads standard input):

    - ``text``: one sentence per line; an empty line is an empty sentence;
    - ``conll``: token in column 0, every column kept; a ``-DOCSTART-`` line is an empty sentence
      carrying it;
    - ``conllu``: comments, multi-word ranges (``1-2``) and empty nodes (``1.1``) carried in place.
    """
    if fmt == "text":
        return read_text(path, keep_empty=True)
    if fmt == "conll":
        return read_conll(path, tag_column=None, require_tags=False, keep=True)
    if fmt == "conllu":
        return read_conllu(path, keep=True)
    raise DataError(f"unknown format {fmt!r} (choose text, conll or conllu)")


# --------------------------------------------------------------------------------------- schemes
def split_tag(tag: str) -> tuple[str, str]:
    """``"B-PER"`` -> ``("B", "PER")``; ``"O"`` -> ``("O", "")``; other labels -> ``("", label)``."""
    if tag == "O":
        return "O", ""
    if len(tag) > 2 and tag[1] == "-" and tag[0] in "BIES":
        return tag[0], tag[2:]
    return "", tag


_EVIDENCE = {  # kind -> (description, schemes it rules out)
    "other": ("is not O/B-/I-/E-/S-", ("IOB1", "IOB2", "IOBES")),
    "ES": ("uses E-/S- (IOBES)", ("IOB1", "IOB2")),
    "I_start": ("starts an entity with I- (IOB1)", ("IOB2", "IOBES")),
    "B_start": ("starts an entity with B- after a different tag (IOB2/IOBES)", ("IOB1",)),
    "open_end": ("ends an entity without E- (IOB1/IOB2)", ("IOBES",)),
}


def _evidence(sentences: Sequence[Sentence]) -> dict[str, tuple[int, str]]:
    """First (line, tag) of each kind of scheme evidence (see _EVIDENCE) in the data."""
    found: dict[str, tuple[int, str]] = {}
    for s in sentences:
        if s.tags is None:
            continue
        parts = [split_tag(t) for t in s.tags] + [("O", "")]
        prev = ("O", "")
        for i, (tag, line) in enumerate(zip(s.tags, s.lines)):
            pre, typ = parts[i]
            kinds = []
            if pre == "":
                kinds.append("other")
            elif pre in ("E", "S"):
                kinds.append("ES")
            inside = prev[0] in ("B", "I") and prev[1] == typ
            if pre == "I" and not inside:
                kinds.append("I_start")
            if pre == "B" and not inside:
                kinds.append("B_start")
            nxt = parts[i + 1]
            if pre in ("B", "I") and not (nxt[0] in ("I", "E") and nxt[1] == typ):
                kinds.append("open_end")
            for k in kinds:
                found.setdefault(k, (line, tag))
            prev = (pre, typ)
    return found


def _describe(kind: str, at: tuple[int, str]) -> str:
    return f"line {at[0]} tag {at[1]!r} {_EVIDENCE[kind][0]}"


def detect_scheme(sentences: Sequence[Sentence], path: str = "data") -> Scheme:
    """The tagging scheme of ``sentences``: IOB2 when ambiguous, ``none`` for plain labels.
    Raises :class:`DataError` for a mix of schemes (or of chunk tags and plain labels)."""
    ev = _evidence(sentences)
    chunk_kinds = {k: v for k, v in ev.items() if k != "other"}
    has_chunks = chunk_kinds or any(t[:2] in ("B-", "I-") for s in sentences for t in (s.tags or []))
    if "other" in ev:
        if not has_chunks:
            return "none"
        kind, at = next(iter(chunk_kinds.items()))
        raise DataError(f"{path}: mixed tag schemes: {_describe('other', ev['other'])} but {_describe(kind, at)}")
    for scheme in ("IOB2", "IOB1", "IOBES"):
        if not any(scheme in _EVIDENCE[k][1] for k in ev):
            return scheme
    a, b = _conflict(ev)
    raise DataError(f"{path}: mixed tag schemes: {_describe(a, ev[a])} but {_describe(b, ev[b])}")


def _conflict(ev: dict[str, tuple[int, str]]) -> tuple[str, str]:
    """Two kinds of evidence that no single scheme allows together (earliest line first)."""
    kinds = sorted(ev, key=lambda k: ev[k][0])
    for i, a in enumerate(kinds):
        for b in kinds[i + 1 :]:
            if not any(s not in _EVIDENCE[a][1] and s not in _EVIDENCE[b][1] for s in ("IOB1", "IOB2", "IOBES")):
                return a, b
    return kinds[0], kinds[-1]


def check_scheme(sentences: Sequence[Sentence], scheme: Scheme, path: str = "data") -> None:
    """Raise :class:`DataError` if the tags break ``scheme`` (``none`` accepts anything)."""
    if scheme == "none":
        return
    for kind, at in _evidence(sentences).items():
        if scheme in _EVIDENCE[kind][1]:
            raise DataError(f"{path}: tags are not {scheme}: {_describe(kind, at)}")


def tags_to_spans(tags: Sequence[str]) -> list[Span]:
    """Chunks of a tag sequence in any scheme, with conlleval's rules (seqeval ``get_entities``):
    an ``I-X`` after ``O`` or another type starts a chunk, so invalid sequences are read leniently."""
    return [Span(t, s, e) for t, s, e in get_entities(list(tags))]


def spans_to_tags(spans: Sequence[Span], n: int, scheme: Scheme) -> list[str]:
    """Tags of ``n`` tokens holding the non-overlapping ``spans`` in ``scheme`` (IOB1/IOB2/IOBES)."""
    tags = ["O"] * n
    prev_end, prev_type = -2, None
    for typ, start, end in sorted(spans, key=lambda s: s.start):
        if scheme == "IOBES":
            if start == end:
                tags[start] = f"S-{typ}"
            else:
                tags[start], tags[end] = f"B-{typ}", f"E-{typ}"
                tags[start + 1 : end] = [f"I-{typ}"] * (end - start - 1)
        else:
            tags[start : end + 1] = [f"I-{typ}"] * (end - start + 1)
            if scheme == "IOB2" or (prev_end == start - 1 and prev_type == typ):
                tags[start] = f"B-{typ}"
        prev_end, prev_type = end, typ
    return tags


def convert(tags: Sequence[str], scheme: Scheme) -> list[str]:
    """``tags`` (any chunk scheme) rewritten in ``scheme``; ``none`` returns them unchanged."""
    if scheme == "none":
        return list(tags)
    return spans_to_tags(tags_to_spans(tags), len(tags), scheme)
