"""Labelled and unlabelled texts for classification: CSV/TSV tables or ``label<TAB>text`` lines, read
with one-line errors that name the file, line and column, and number sequences.

Labelled formats read by :func:`read_labelled`:

* CSV / TSV with a header row (``--text-column`` / ``--label-column``; GLUE's SST-2 ``train.tsv`` works as
  is with ``sentence`` / ``label``);
* headerless lines ``label<TAB>text``.

Files may be UTF-8 (a byte-order mark is dropped) or UTF-16 with its byte-order mark, with ``\\n`` or
``\\r\\n`` line ends (:func:`lstmkit.data.files.read_lines`). Refused with a :class:`~lstmkit.errors.DataError`: a
missing file, a folder, an empty or header-only file, binary data, bytes that are not UTF-8, a header
without a label column or with another delimiter, a column named twice, a ragged row, an empty label;
in numbers, NaN, infinities and values beyond float32.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal, NamedTuple

from lstmkit.data.files import csv_reader, listing, read_lines, short
from lstmkit.errors import DataError

TextFormat = Literal["auto", "csv", "tsv", "lines"]

TEXT_COLUMN_GUESSES = ("text", "sentence", "review", "content", "sequence")
LABEL_COLUMN_GUESSES = ("label", "labels", "class", "target", "y")


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
            raise DataError(f"{path}: column '{wanted}' not found (columns: {listing(header)})")
        index = header.index(wanted)
    else:
        lower = [h.strip().lower() for h in header]
        found = [g for g in guesses if g in lower]
        if not found:
            raise DataError(
                f"{path}: no {what} column found (columns: {listing(header)}); name it with --{what}-column"
                + _delimiter_hint(header, path)
            )
        index = lower.index(found[0])
    twice = [i for i, h in enumerate(header) if h == header[index]]
    if len(twice) > 1:
        raise DataError(
            f"{path}: column '{header[index]}' appears twice in the header (columns {twice[0] + 1} and "
            f"{twice[1] + 1}); rename one of them"
        )
    return index


def _delimiter_hint(header: list[str], path: Path) -> str:
    """A hint when a one-column header holds another delimiter (``"sentence;label"``)."""
    if len(header) != 1:
        return ""
    for sep, what in (("\t", "tabs"), (",", "commas"), (";", "';'"), ("|", "'|'")):
        if sep in header[0]:
            return f"; the header is separated by {what}: pass --format csv or tsv to match, or convert the file"
    return ""


def _looks_like_header(fields: Sequence[str], label_column: str | None, text_column: str | None) -> bool:
    """Whether a first row names columns: a named column, or a usual label or text column name."""
    if text_column is not None or label_column is not None:
        return True  # named columns only make sense with a header; a miss is reported later
    names = {f.strip().lower() for f in fields}
    return bool(names & set(LABEL_COLUMN_GUESSES)) or bool(names & set(TEXT_COLUMN_GUESSES))


def _rows(
    lines: list[str], fmt: Literal["csv", "tsv"], path: Path, keep_blank: bool = False
) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) for each row, blank rows skipped unless ``keep_blank`` (then they
    come as ``[]``); TSV is read without quoting (as GLUE writes it)."""
    if fmt == "tsv":
        for n, line in enumerate(lines, start=1):
            if line.strip():
                yield n, line.split("\t")
            elif keep_blank:
                yield n, []
        return
    reader = csv_reader(ln + "\n" for ln in lines)  # line ends kept: a field spanning lines shows them
    start = 1  # the line a row starts on (a quoted field may span lines)
    try:
        for fields in reader:
            if fields and any(f.strip() for f in fields):
                yield start, fields
            elif keep_blank:
                yield start, []
            start = reader.line_num + 1
    except csv.Error as e:
        raise DataError(f"{path}: line {start}: {e}") from None


def read_labelled(
    path: str | Path,
    text_column: str | None = None,
    label_column: str | None = None,
    fmt: TextFormat = "auto",
) -> list[LabelledText]:
    """Read labelled texts from CSV/TSV with a header, or from ``label<TAB>text`` lines.

    ``fmt="auto"``: if the first line names a column (``--text-column``/``--label-column``, or one of
    ``label, class, target, ...`` / ``text, sentence, ...``) the file is a table (CSV, or TSV for
    ``.tsv``/tab-separated files); otherwise each line is ``label<TAB>text``. Files may be UTF-8 or
    UTF-16 with a byte-order mark, with ``\\n`` or ``\\r\\n`` line ends (see :func:`lstmkit.data.files.read_lines`).
    """
    p = Path(path)
    lines = read_lines(p, "labelled texts")
    first = next(ln for ln in lines if ln.strip())
    if fmt == "auto":
        table = _sniff_format(p, first)
        header = next(iter(_rows([first], table, p)), (0, []))[1]
        fmt = table if _looks_like_header(header, label_column, text_column) else "lines"
    if fmt == "lines":
        return _read_label_tab_text(p, lines)
    rows = _rows(lines, fmt, p)
    _, header = next(rows)
    header = [h.strip() for h in header]
    ti = _pick_column(header, text_column, TEXT_COLUMN_GUESSES, "text", p)
    li = _pick_column(header, label_column, LABEL_COLUMN_GUESSES, "label", p)
    if ti == li:
        raise DataError(f"{p}: the text and the label column are the same ('{header[ti]}')")
    out = []
    for n, fields in rows:
        if len(fields) != len(header):
            hint = "; a text holding a tab?" if fmt == "tsv" else "; quote fields that hold commas"
            if any("\n" in f for f in fields):
                hint = '; a quote (") that never closes?'

            raise DataError(f"{p}: line {n} has {len(fields)} fields, the header has {len(header)}{hint}")
        label = fields[li].strip()
        if label == "":
            raise DataError(f"{p}: line {n}: empty label in column '{header[li]}'")
        out.append(LabelledText(fields[ti].strip(), label, n))
    if not out:
        raise DataError(f"{p}: no examples after the header")
    return out


def _read_label_tab_text(p: Path, lines: list[str]) -> list[LabelledText]:
    out = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if "\t" not in line:
            hint = _delimiter_hint([line], p) if n == 1 else ""
            raise DataError(f"{p}: line {n}: expected 'label<TAB>text' (or a header naming the columns){hint or ''}")
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
    rows = _rows(lines, fmt, p, keep_blank=True)
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
#: the largest magnitude a number may have: the network computes in float32
FLOAT32_MAX = 3.4028234663852886e38


def parse_numbers(text: str, where: str) -> list[float]:
    """A sequence of numbers separated by spaces, commas or semicolons; NaN/inf, values beyond
    float32 and garbage raise :class:`DataError` naming ``where`` and the value."""
    parts = [s for s in _NUM_SPLIT.split(text.strip()) if s]
    if not parts:
        raise DataError(f"{where}: empty number sequence")
    out = []
    for k, s in enumerate(parts, start=1):
        try:
            x = float(s)
        except ValueError:
            raise DataError(f"{where}: {short(s)} is not a number (number {k})") from None
        if not math.isfinite(x):
            raise DataError(f"{where}: non-finite value {short(s)} (number {k}); only finite numbers are allowed")
        if abs(x) > FLOAT32_MAX:
            raise DataError(f"{where}: {short(s)} is too large (number {k}; beyond float32, |x| <= 3.4e38)")
        out.append(x)
    return out
