"""Translate's inputs: the forms of ``--data`` / ``data=``, the command line's extra arguments, batches.

What ``lstmkit.train("translate", data=...)``, ``Predictor.evaluate(data)`` and the command line take::

    "train.tsv"                          one file of source<TAB>target lines
    ("train.de", "train.en")             two line-aligned files (a tuple or list of two paths)
    [("ein hund", "a dog"), ...]         sentence pairs in memory
    ParallelText                         as read by lstmkit.data.parallel

The command line also takes ``--source F --target F`` (``--valid-source``/``--valid-target``) and the
old ``--data PREFIX --src-lang de --tgt-lang en`` (PREFIX.de and PREFIX.en); :func:`fold_inputs` turns
them into the forms above.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from lstmkit.data.parallel import PairExample, ParallelText, from_pairs, read_parallel, read_tsv
from lstmkit.errors import DataError

if TYPE_CHECKING:  # torch only where batches are made: the runtime reads inputs without it
    from torch import Tensor

DEFAULT_LANGS = ("de", "en")


class TranslateBatch(NamedTuple):
    """src (B, S) and src_len (B,); tgt_in (B, T) = <s> y; tgt_out (B, T) = y </s>; position (B,) in the data set."""

    src: Tensor
    src_len: Tensor
    tgt_in: Tensor
    tgt_out: Tensor
    position: Tensor


def _is_path(x: Any) -> bool:
    return isinstance(x, (str, os.PathLike))


def read_pairs(data: Any, what: str = "data") -> tuple[ParallelText, str]:
    """Sentence pairs of any input form (see the module docstring) and a name for messages."""
    if isinstance(data, ParallelText):
        return data, what
    if _is_path(data):
        return read_tsv(data), str(data)
    if isinstance(data, Sequence) and len(data) == 2 and all(_is_path(x) for x in data):
        missing = [str(x) for x in data if not Path(x).exists()]
        if len(missing) == 2:
            raise DataError(
                f"{what}: {missing[0]}: file not found (a pair of strings is read as (source file, target file); "
                "sentence pairs in memory are a list of (source, target) tuples)"
            )
        return read_parallel(data[0], data[1]), f"{data[0]} / {data[1]}"
    if isinstance(data, Sequence) and not isinstance(data, (str, bytes)) and not data:
        raise DataError(f"{what}: no sentence pairs (an empty {type(data).__name__})")
    if isinstance(data, Sequence):
        return from_pairs(data, what), what
    raise DataError(
        f"{what}: expected a TSV file, a (source file, target file) pair or a list of "
        f"(source, target) sentence pairs, got {type(data).__name__}"
    )


def _one_side(
    path: str | None,
    source: str | None,
    target: str | None,
    names: tuple[str, str, str],
    langs: tuple[str | None, str | None],
) -> Any:
    """One data set from ``--data`` (TSV or PREFIX) or ``--source``/``--target``; None if not given."""
    flag, sflag, tflag = names
    if (source is None) != (target is None):
        raise DataError(f"{sflag} and {tflag} must be given together")
    if source is not None:
        if path is not None:
            raise DataError(f"give {flag} or {sflag}/{tflag}, not both")
        return (source, target)
    if path is None:
        return None
    if path == "-":
        raise DataError(f"{flag} -: only predict reads standard input; pass a file")
    if Path(path).is_dir():
        raise DataError(f"{flag} {path}: is a folder; expected a TSV file, or PREFIX with PREFIX.de and PREFIX.en")
    explicit = langs[0] is not None or langs[1] is not None
    if not explicit and Path(path).is_file():
        return path  # a TSV file
    src, tgt = (f"{path}.{lang or default}" for lang, default in zip(langs, DEFAULT_LANGS))
    if explicit or (Path(src).is_file() and Path(tgt).is_file()):
        return (src, tgt)
    raise DataError(f"{flag} {path}: file not found (nor {src} and {tgt})")


def fold_inputs(data: str | None, valid: str | None, extra: Mapping[str, Any]) -> tuple[Any, Any]:
    """``SPEC.inputs``: the command line's ``--data``/``--valid`` and extra arguments as ``(data, valid)``."""
    langs = (extra.get("src_lang"), extra.get("tgt_lang"))
    return (
        _one_side(data, extra.get("source"), extra.get("target"), ("--data", "--source", "--target"), langs),
        _one_side(
            valid,
            extra.get("valid_source"),
            extra.get("valid_target"),
            ("--valid", "--valid-source", "--valid-target"),
            langs,
        ),
    )


def collate(examples: list[PairExample]) -> TranslateBatch:
    """PairExamples -> a padded TranslateBatch (padding id 0)."""
    import torch

    from lstmkit.data.batching import pad_sequences

    src, src_len = pad_sequences([torch.tensor(e.src, dtype=torch.long) for e in examples])  # (B, S)
    tgt, _ = pad_sequences([torch.tensor(e.tgt, dtype=torch.long) for e in examples])  # (B, T + 1)
    position = torch.tensor([e.position for e in examples], dtype=torch.long)
    return TranslateBatch(src, src_len, tgt[:, :-1], tgt[:, 1:], position)
