"""Speech manifests: ``path,text`` CSV (or TSV) files naming the audio of a data set.

``read_manifest`` reads one (each row a :class:`ManifestEntry`, its path joined to the manifest's
folder); ``build_manifest`` writes one for a folder of audio files whose names (``--pattern``) carry
the transcripts' keys; ``list_audio`` lists a folder's audio files. Bad input raises
:class:`lstmkit.errors.DataError` naming the file and line.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import NamedTuple

from lstmkit.data.files import csv_reader, read_lines
from lstmkit.errors import DataError, warn

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


class ManifestEntry(NamedTuple):
    """One manifest row: the audio ``path`` (joined to the manifest's folder), its ``text``, the
    manifest ``line`` (1-based), ``source`` for messages and the path field as ``given``."""

    path: Path
    text: str
    line: int
    source: str  # "manifest.csv line 7" for messages
    given: str = ""  # the path field as the manifest writes it


def read_manifest(path: str | Path, *, require_text: bool = True) -> list[ManifestEntry]:
    """Read a ``path,text`` CSV; relative paths are taken from the manifest's folder.

    Extra columns are ignored. Raises DataError for a missing, empty or non-UTF-8 file, an audio file
    or a folder given instead, a missing or repeated column or an empty field (naming the line).
    Whether each audio file exists is checked when it is read.
    """
    if str(path) == "-":
        raise DataError("-: a manifest is read from a file (only predict reads audio paths from standard input)")
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not a manifest CSV (lstmkit speech manifest writes one from a folder)")
    if not path.is_file():
        raise DataError(f"{path}: manifest not found")
    if path.suffix.lower() in AUDIO_SUFFIXES:
        raise DataError(f"{path}: an audio file, not a manifest: give a CSV with the columns path,text")
    lines = read_lines(path, "a manifest CSV with the columns path,text")
    reader = csv_reader(lines)
    rows: list[tuple[int, list[str]]] = []
    try:
        for row in reader:
            if any(f.strip() for f in row):  # blank lines are skipped
                rows.append((reader.line_num, row))
    except csv.Error as e:
        raise DataError(f"{path} line {reader.line_num}: {e}") from None
    if not rows:
        raise DataError(f"{path}: empty manifest")
    first, header = rows[0][0], [h.strip() for h in rows[0][1]]
    repeated = sorted({h for h in header if h and header.count(h) > 1})
    if repeated:
        raise DataError(f"{path} line {first}: column '{repeated[0]}' appears twice in the header")
    needed = ["path", "text"] if require_text else ["path"]
    for col in needed:
        if col not in header:
            if any(";" in h or "\t" in h for h in header):
                hint = ": a manifest is comma-separated"
            elif any(h.lower().endswith(AUDIO_SUFFIXES) for h in header):
                hint = ": the first line must name the columns (path,text)"
            else:
                hint = ""
            raise DataError(f"{path}: column '{col}' not found (columns: {', '.join(header)}){hint}")
    i_path = header.index("path")
    i_text = header.index("text") if "text" in header else None
    entries = []
    for n, row in rows[1:]:
        if len(row) != len(header):
            raise DataError(f"{path} line {n}: {len(row)} fields, header has {len(header)}")
        audio = row[i_path].strip()
        label = row[i_text].strip() if i_text is not None else ""
        if not audio:
            raise DataError(f"{path} line {n}: empty field 'path'")
        if require_text and not label:
            raise DataError(f"{path} line {n}: empty field 'text'")
        full = Path(audio) if Path(audio).is_absolute() else path.parent / audio
        entries.append(ManifestEntry(full, label, n, f"{path.name} line {n}", audio))
    if not entries:
        raise DataError(f"{path}: manifest has a header but no rows")
    return entries


def parse_index_spec(spec: str) -> set[int]:
    """Parse ``"0-4"`` or ``"0,2,5-7"`` into a set of ints. Raises DataError when malformed."""
    out: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise DataError(f"--test-index: cannot parse '{part}' (expected e.g. 0-4 or 0,2,5-7)")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo:
            raise DataError(f"--test-index: empty range '{part}'")
        out.update(range(lo, hi + 1))
    return out


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """Turn ``'{text}_{speaker}_{index}.wav'`` into a regex with one named group per field.

    ``{index}`` matches digits; other fields match non-empty text without ``/``.
    """
    fields = re.findall(r"\{(\w+)\}", pattern)
    if "text" not in fields:
        raise DataError(f"--pattern '{pattern}': must contain {{text}}")
    regex = ""
    for literal, name in re.findall(r"([^{}]*)(?:\{(\w+)\})?", pattern):
        regex += re.escape(literal)
        if name:
            regex += rf"(?P<{name}>\d+)" if name == "index" else rf"(?P<{name}>[^/]+?)"
    return re.compile(regex)


def build_manifest(
    folder: str | Path,
    out: str | Path,
    pattern: str = "{text}_{speaker}_{index}.wav",
    test_index: str | None = "0-4",
) -> dict[str, int]:
    """Write ``out/train.csv`` and ``out/test.csv`` from audio files whose names carry the label.

    Files whose ``{index}`` is in ``test_index`` go to test.csv, the others to train.csv (with
    ``test_index=None`` everything goes to train.csv and no test.csv is written). Paths are
    written relative to ``out``; rows are sorted by file name. Returns row counts per file.
    """
    from lstmkit.io import atomic_write_text

    folder, out = Path(folder), Path(out)
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found")
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: exists and is not a folder")
    regex = pattern_regex(pattern)
    if test_index is not None and "index" not in regex.groupindex:
        raise DataError(f"--pattern '{pattern}': needs {{index}} to use --test-index")
    test_ids = parse_index_spec(test_index) if test_index is not None else set()
    extra = [g for g in regex.groupindex if g not in ("text",)]
    splits: dict[str, list[list[str]]] = {"train": [], "test": []}
    skipped = 0
    for f in sorted(folder.rglob("*")):
        rel = f.relative_to(folder).as_posix()
        m = regex.fullmatch(rel) or regex.fullmatch(f.name)
        if not f.is_file() or m is None:
            skipped += int(f.is_file())
            continue
        split = "test" if "index" in m.groupdict() and int(m["index"]) in test_ids else "train"
        rel_out = _relpath(f, out)
        splits[split].append([rel_out, m["text"], *(m[g] for g in extra)])
    if not splits["train"] and not splits["test"]:
        raise DataError(f"{folder}: no file matches --pattern '{pattern}'")
    if skipped:
        warn(f"{folder}: {skipped} files do not match --pattern '{pattern}' (skipped)")
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split, rows in splits.items():
        if split == "test" and test_index is None:
            continue
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows([["path", "text", *extra], *rows])
        atomic_write_text(out / f"{split}.csv", buf.getvalue())
        counts[split] = len(rows)
    return counts


def _relpath(target: Path, start: Path) -> str:
    import os

    return Path(os.path.relpath(target.resolve(), start.resolve())).as_posix()


def list_audio(folder: str | Path) -> list[Path]:
    """All audio files (wav/flac/ogg) under ``folder``, sorted. Raises DataError if none."""
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise DataError(f"{folder}: no audio files (.wav/.flac/.ogg) found")
    return files
