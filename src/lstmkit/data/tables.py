"""Tables for forecasting: reading a CSV or Parquet file (or a DataFrame) with one-line errors,
and the checks of its cells (numbers, times) that name the file, line and column.

A CSV may be UTF-8 (a byte-order mark is dropped) or UTF-16 with its byte-order mark, with ``\\n``
or ``\\r\\n`` line ends. Refused with a :class:`~lstmkit.errors.DataError`: a missing file, a
folder, an empty or header-only file, binary data (a NUL byte), bytes that are not UTF-8, a header
that is one column holding ``;``/tabs (another delimiter), a duplicated or unnamed column, a ragged
row; in the columns used, a non-numeric, non-finite (NaN is a *missing* value, ``inf`` is refused)
or out-of-float32-range value, an empty or unparsable time.

The index of a table read from text is its file line minus 2, so ``where(name, index)`` says
``line N`` for a file and ``row N`` for a DataFrame.
"""

from __future__ import annotations

import csv
import io
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from lstmkit.data.files import short
from lstmkit.errors import DataError

#: the largest magnitude a value may have: the network computes in float32
FLOAT32_MAX = float(np.finfo(np.float32).max)
COPY_ON_WRITE = int(pd.__version__.split(".")[0]) >= 3  # always on from pandas 3


def table_name(source: object) -> str:
    """How messages name a table: its file name, ``DataFrame`` for one in memory (``<stdin>`` for a
    table read from standard input), else ``data``."""
    if isinstance(source, (str, os.PathLike)):
        return Path(source).name
    if isinstance(source, pd.DataFrame):
        return str(source.attrs.get("source", "DataFrame"))
    return "data"


def where(name: str, index: int) -> str:
    """Where row ``index`` of a table is: ``line N`` of a file (index = line - 2), ``row N`` of a DataFrame."""
    return f"row {index}" if name == "DataFrame" else f"line {index + 2}"


def read_table(path: str | Path | pd.DataFrame) -> pd.DataFrame:
    """Read a CSV or Parquet file (or copy a DataFrame): one line ``DataError`` for a missing file, a
    folder, an empty, binary or non-UTF-8 file, a wrong delimiter, duplicated or ragged columns.

    A CSV may be UTF-8 (with or without a byte-order mark) or UTF-16 with a byte-order mark, with
    ``\\n`` or ``\\r\\n`` line ends. The index of the result is the file line minus 2 (row ``i`` after
    the header is line ``i + 2`` when there are no blank lines); a DataFrame gets a 0-based index."""
    if isinstance(path, pd.DataFrame):
        return _check_frame(path)
    if not isinstance(path, (str, os.PathLike)):
        raise DataError(f"data: expected a CSV or Parquet file path or a pandas DataFrame, got {type(path).__name__}")
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not a file; pass a CSV or Parquet file")
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if path.suffix.lower() in (".parquet", ".pq"):
        return _read_parquet(path)
    return parse_csv(path.read_bytes(), path.name)


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises its own types (ArrowInvalid, ...)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise DataError(f"{path.name}: cannot read as Parquet ({first})") from None
    if len(df) == 0:
        raise DataError(f"{path.name}: no data rows")
    df = _check_frame(df, path.name)
    df.attrs["source"] = path.name
    return df


def _check_frame(df: pd.DataFrame, name: str | None = None) -> pd.DataFrame:
    """A copy with string column names; no columns or a duplicated name raise."""
    name = name or table_name(df)
    if len(df.columns) == 0:
        raise DataError(f"{name}: no columns")
    cols = [str(c) for c in df.columns]
    _no_duplicates(cols, name)
    keep = bool(df.attrs.get("source"))  # read from text: the index holds the file lines
    plain = isinstance(df.index, pd.RangeIndex) and df.index.start == 0 and df.index.step == 1
    if COPY_ON_WRITE and (keep or plain):  # a shallow copy shares the data until either frame changes it
        out = df.copy(deep=False)
    else:
        out = df.copy() if keep else df.reset_index(drop=True)
    if any(type(c) is not str for c in df.columns):  # renaming costs more than looking
        out.columns = cols
    return out


def _no_duplicates(cols: Sequence[str], name: str) -> None:
    seen: dict[str, int] = {}
    for i, c in enumerate(cols):
        if c in seen:
            raise DataError(
                f"{name}: column '{c}' appears twice (columns {seen[c] + 1} and {i + 1}); rename one of them"
            )
        seen[c] = i


def decode_text(raw: bytes, name: str) -> str:
    """UTF-8 (a byte-order mark is dropped) or UTF-16 with its byte-order mark; binary data and bad
    bytes raise naming the line and column."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError:
            raise DataError(f"{name}: starts like UTF-16 but is not valid UTF-16; save it as UTF-8") from None
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    nul = raw.find(b"\x00")
    if nul >= 0:
        line, col = _line_col(raw, nul)
        raise DataError(f"{name}: line {line}, column {col}: binary data (a NUL byte), not a text table")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line, col = _line_col(raw, e.start)
        raise DataError(
            f"{name}: line {line} is not valid UTF-8 (byte 0x{raw[e.start]:02x} at column {col}); save it as UTF-8"
        ) from None


def _line_col(raw: bytes, pos: int) -> tuple[int, int]:
    return raw.count(b"\n", 0, pos) + 1, pos - (raw.rfind(b"\n", 0, pos) + 1) + 1


def parse_csv(raw: bytes, name: str) -> pd.DataFrame:
    """A comma-separated table from its bytes (see :func:`read_table`); ``df.attrs["source"]`` = ``name``."""
    text = decode_text(raw, name)
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    numbered = [(n, ln) for n, ln in enumerate(lines, start=1) if ln.strip()]
    if not numbered:
        raise DataError(f"{name}: file is empty")
    header = next(csv.reader([numbered[0][1]]))
    _check_header(header, name, numbered[0][0])
    quoted = '"' in text  # a quoted field may span lines: pandas numbers the rows then
    body = "\n".join(ln for _, ln in numbered) + "\n"
    try:
        df = pd.read_csv(io.StringIO(body), low_memory=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"{name}: file is empty") from None
    except pd.errors.ParserError as exc:  # "Expected 3 fields in line 5, saw 4"
        raise DataError(f"{name}: {_ragged(str(exc), [n for n, _ in numbered], len(header))}") from None
    except (ValueError, OverflowError) as exc:
        raise DataError(f"{name}: cannot read ({str(exc).splitlines()[0][:200]})") from None
    if len(df) == 0:
        raise DataError(f"{name}: no data rows (only the header)")
    if not quoted and len(df) == len(numbered) - 1:
        df.index = pd.Index([n - 2 for n, _ in numbered[1:]])  # index + 2 = the file line
    df.attrs["source"] = name
    return df


def _check_header(header: list[str], name: str, line: int) -> None:
    if len(header) == 1:
        for sep, what in (("\t", "tab"), (";", "';'"), ("|", "'|'")):
            if sep in header[0]:
                raise DataError(
                    f"{name}: line {line}: the header is one column holding {what}s; forecast reads "
                    "comma-separated CSV (or Parquet): convert the file"
                )
    blank = [i + 1 for i, h in enumerate(header) if not h.strip()]
    if blank:
        raise DataError(f"{name}: line {line}: column {blank[0]} of the header has no name")
    _no_duplicates([h.strip() for h in header], name)


def _ragged(message: str, lines: list[int], width: int) -> str:
    """pandas' "Expected 3 fields in line 5, saw 4" as "line 5 has 4 fields, the header has 3"."""
    m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message)
    if m is None:
        return f"cannot read ({message.strip().splitlines()[-1][:200]})"
    row = int(m.group(2))
    line = lines[row - 1] if 0 < row <= len(lines) else row
    return f"line {line} has {m.group(3)} fields, the header has {width}; quote fields that hold commas"


def _to_numbers(col: pd.Series) -> pd.Series:
    """``col`` as numbers, NaN where a cell is not one (lists and other objects included)."""
    try:
        return pd.to_numeric(col, errors="coerce")
    except (TypeError, ValueError):
        return pd.to_numeric(col.map(lambda v: v if isinstance(v, (int, float, str)) else None), errors="coerce")


def numeric_like(col: pd.Series) -> bool:
    """A numeric column, or a text column most of whose non-empty cells are numbers (a stray text
    cell in a number column is then reported, not taken as a reason to skip the column)."""
    if pd.api.types.is_numeric_dtype(col):
        return True
    if not (col.dtype == object or isinstance(col.dtype, pd.StringDtype)):
        return False
    filled = col[col.notna() & (col.astype(str).str.strip() != "")]
    return len(filled) > 0 and bool(_to_numbers(filled).notna().mean() >= 0.5)


def check_numeric(df: pd.DataFrame, cols: list[str], name: str) -> pd.DataFrame:
    """Coerce columns to float64; a non-numeric, non-finite or out-of-range (beyond float32) cell
    raises DataError naming the column and line. Empty cells become NaN (missing: ``--fill``)."""
    out = df.copy()
    for c in cols:
        dtype = out[c].dtype
        if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
            num = out[c]  # already numbers (a DataFrame given in Python, JSON rows): only the range to check
        else:
            num = _to_numbers(out[c])
            bad = num.isna() & out[c].notna()
            if isinstance(dtype, pd.StringDtype) or pd.api.types.is_object_dtype(dtype):
                bad = bad & (out[c].astype(str).str.strip() != "")
            if bad.any():
                i = int(np.flatnonzero(bad.to_numpy())[0])
                raise DataError(
                    f"{name}: column '{c}' {where(name, int(out.index[i]))}: non-numeric value {short(out[c].iloc[i])}"
                )
        num = num.astype("float64")
        values = num.to_numpy()
        wild = ~np.isfinite(values) & ~np.isnan(values)
        huge = np.isfinite(values) & (np.abs(np.nan_to_num(values)) > FLOAT32_MAX)
        for mask, what in ((wild, "is not finite"), (huge, "is too large (beyond float32, |x| <= 3.4e38)")):
            if mask.any():
                i = int(np.flatnonzero(mask)[0])
                raise DataError(
                    f"{name}: column '{c}' {where(name, int(out.index[i]))}: value {short(out[c].iloc[i])} {what} "
                    f"({cells(int(mask.sum()))} in all); only finite numbers are allowed (an empty cell is a missing value)"
                )
        out[c] = num
    return out


def cells(n: int) -> str:
    return f"{n} cell" if n == 1 else f"{n} cells"


def parse_times(col: pd.Series, name: str) -> pd.Series:
    """The time column as datetime64; an empty or unparsable cell raises naming its line."""
    with warnings.catch_warnings():  # "could not infer format": the cell at fault is reported below
        warnings.simplefilter("ignore")
        try:
            parsed = pd.to_datetime(col)
        except (ValueError, TypeError, OverflowError):
            try:
                parsed = pd.to_datetime(col, errors="coerce", format="mixed")
            except (ValueError, TypeError, OverflowError):
                parsed = pd.Series(pd.NaT, index=col.index)
    bad = parsed.isna().to_numpy()
    if not bad.any():
        return parsed
    i = int(np.flatnonzero(bad)[0])
    cell = col.iloc[i]
    what = "empty time" if pd.isna(cell) or not str(cell).strip() else f"cannot parse {short(cell)} as a time"
    raise DataError(
        f"{name}: column '{col.name}' {where(name, int(col.index[i]))}: {what}; "
        "use one format such as 2024-01-31 13:00 throughout"
    )
