"""Reading users' files: the one line reader, and short forms of values for one-line messages."""

from __future__ import annotations

import csv
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from lstmkit.errors import DataError


def read_lines(
    path: str | os.PathLike[str], what: str = "text, one item per line", allow_empty: bool = False
) -> list[str]:
    """The lines of a user's text file, without line ends (``-``: standard input): the one line
    reader of every task.

    UTF-8 is checked line by line (a byte-order mark is dropped), UTF-16 with a byte-order mark is
    decoded, ``\r\n`` line ends are accepted. A missing file, a folder, binary data (a NUL byte), a line
    that is not UTF-8 and an empty file or standard input (unless ``allow_empty``; ``what`` says what
    was expected) raise :class:`DataError` naming the file, line and column.
    """
    if str(path) == "-":
        p, stdin = Path("<stdin>"), sys.stdin
        raw = stdin.buffer.read() if hasattr(stdin, "buffer") else stdin.read().encode("utf-8")
        if not raw.strip() and not allow_empty:
            raise DataError(f"<stdin>: nothing on standard input; pipe {what} in or pass --data FILE")
    else:
        p = Path(path)
        if p.is_dir():
            raise DataError(f"{p}: is a folder, not a file")
        if not p.is_file():
            raise DataError(f"{p}: file not found")
        raw = p.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = raw.decode("utf-16")
        except UnicodeDecodeError:
            raise DataError(f"{p}: starts like UTF-16 but is not valid UTF-16; save it as UTF-8") from None
        raw = text.encode("utf-8")
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if not raw.strip():
        if allow_empty:
            return []
        raise DataError(f"{p}: empty file (expected {what})")
    nul = raw.find(b"\x00")
    if nul >= 0:
        line = raw.count(b"\n", 0, nul) + 1
        col = nul - (raw.rfind(b"\n", 0, nul) + 1) + 1
        raise DataError(f"{p}: line {line}, column {col}: binary data (a NUL byte), not a text file")
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    out = []
    for n, b in enumerate(lines, start=1):
        try:
            out.append(b.decode("utf-8").rstrip("\r"))
        except UnicodeDecodeError as e:
            raise DataError(
                f"{p}: line {n} is not valid UTF-8 (byte 0x{b[e.start]:02x} at column {e.start + 1}); save it as UTF-8"
            ) from None
    return out


def short(value: object, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters, for one-line messages (a numpy scalar as its value)."""
    if type(value).__module__ == "numpy" and getattr(value, "shape", None) == ():
        value = value.item()  # type: ignore[attr-defined]
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def listing(values: Sequence[object], limit: int = 10) -> str:
    """Names for a message: at most ``limit`` of them (each cut to 30 characters), then how many more."""
    shown = [str(v)[:30] for v in list(values)[:limit]]
    more = len(values) - limit
    return ", ".join(shown) + (f", ... ({more} more)" if more > 0 else "")


def read_text(path: str | os.PathLike[str]) -> str:
    """The whole file as one string (see :func:`read_lines`), each line ending in ``\n``."""
    return "\n".join(read_lines(path)) + "\n"


def csv_reader(lines: Iterable[str]) -> Any:  # a csv reader: rows as lists of str, and .line_num
    """``csv.reader`` over ``lines`` with no limit on a field's size (the csv module's default, 128 KB,
    is a process-wide setting: every reader of lstmkit lifts it, so none depends on another having run).
    Long texts are for the task's limit (``--max-len``, ``--max-seconds``) to cut, not for the reader."""
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
    return csv.reader(lines)
