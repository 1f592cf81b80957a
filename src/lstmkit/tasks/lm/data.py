"""Text -> one token stream -> batchified rows -> BPTT windows (truncated back-propagation through time).

::

    text ──► tokens (+ <eos> per line at word level) ──► ids ──► batchify (B rows) ──► windows of T steps

``batchify`` cuts the stream into B contiguous rows (as pytorch/examples' word_language_model, but
batch-first): with the stream ``a b c ... x`` (N = 24) and B = 4::

    ┌ a b c d e f ┐   row b is the b-th slice of N // B tokens (the tail that does not fill a row
    │ g h i j k l │   is dropped); batch i is the columns [i*T, (i+1)*T) of every row, its targets
    │ m n o p q r │   the columns one to the right. Row b of batch i+1 continues row b of batch i,
    └ s t u v w x ┘   which is why the final hidden state of one batch starts the next.

The trainer's default shuffling would break that continuity, so training uses an in-order
``batch_sampler`` (one window per step) and the carried state lives in ``task.CarriedState``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from lstmkit.data.files import read_lines
from lstmkit.data.text import CharTokenizer, WhitespaceTokenizer
from lstmkit.data.vocab import UNK
from lstmkit.errors import DataError
from lstmkit.tasks.lm.config import Level, LMConfig

if TYPE_CHECKING:  # torch is imported where tensors are made: the runtime reads text without it
    import torch

EOS = "<eos>"
LM_SPECIALS = (UNK,)

LayerArrays = tuple[np.ndarray, np.ndarray]
"""One layer's state as NumPy arrays: h (1, B, H_l), c (1, B, H_l) float32."""
State = list[LayerArrays]
"""The carried state of the whole stack, bottom layer first (the predictor's network methods)."""


# ============================================================================================ text -> tokens
def tokenizer_for(cfg: LMConfig) -> WhitespaceTokenizer | CharTokenizer:
    return CharTokenizer(cfg.lowercase) if cfg.level == "char" else WhitespaceTokenizer(cfg.lowercase)


def tokenize_lines(lines: Iterable[str], cfg: LMConfig) -> list[str]:
    """Word level: each line's tokens then ``<eos>``; char level: the characters, ``\\n`` after each line."""
    tok = tokenizer_for(cfg)
    out: list[str] = []
    for line in lines:
        if cfg.level == "char":
            out.extend(tok.tokenize(line + "\n"))
        else:
            out.extend(tok.tokenize(line))
            out.append(EOS)
    return out


def read_text_lines(data: Any, what: str = "data") -> tuple[list[str], str]:
    """The lines of ``data`` and a name for messages: a text file (a path; ``-``: standard input), or in
    memory a list of strings (each one line or several, split at ``\n``). Anything else, or an item
    that is not a string, raises :class:`DataError` naming it."""
    if isinstance(data, (str, os.PathLike)):
        return read_lines(data, "plain text"), str(data)
    if not isinstance(data, (list, tuple)):
        raise DataError(f"{what}: expected a text file (a path) or a list of lines, got {type(data).__name__}")
    for i, x in enumerate(data):
        if not isinstance(x, str):
            raise DataError(f"{what}: item {i + 1} is {type(x).__name__}, expected a line of text (a string)")
    return [ln.rstrip("\r") for x in data for ln in x.split("\n")], what


def read_stream(data: Any, cfg: LMConfig, what: str = "data") -> list[str]:
    """A text file (or a list of lines) as one token stream; too little text -> DataError."""
    lines, source = read_text_lines(data, what)
    tokens = tokenize_lines(lines, cfg)
    if len(tokens) < 2:
        raise DataError(f"{source}: too little text for a language model ({len(tokens)} tokens; at least 2 are needed)")
    return tokens


def split_stream(tokens: list[str], fractions: Sequence[float], source: str) -> list[list[str]]:
    """Contiguous parts of one stream: (train, valid[, test]) by the given fractions (checked by
    ``LMConfig``: 2 or 3, positive, summing to <= 1)."""
    n, parts, start = len(tokens), [], 0
    for f in fractions:
        end = min(n, start + int(round(n * f)))
        parts.append(tokens[start:end])
        start = end
    if any(len(p) < 2 for p in parts):
        raise DataError(
            f"{source}: too short to split into {','.join(f'{f:g}' for f in fractions)} ({n} tokens): "
            "give more text, or a --valid file"
        )
    return parts


def join_tokens(tokens: Iterable[str], level: Level, line_start: bool = True) -> str:
    """Tokens -> text: characters concatenated; words separated by spaces, ``<eos>`` as a line end."""
    return "".join(text_pieces(tokens, level, line_start))


def text_pieces(tokens: Iterable[str], level: Level, line_start: bool = True) -> Iterator[str]:
    """The text of each token as it would be printed after text that ends a line (``line_start``) or
    not: a word gets a leading space unless it starts a line; ``<eos>`` is ``\\n``."""
    for tok in tokens:
        if level == "char":
            yield tok
        elif tok == EOS:
            line_start = True
            yield "\n"
        else:
            yield ("" if line_start else " ") + tok
            line_start = False


# ============================================================================================ batches
def batchify_array(ids: Sequence[int] | np.ndarray, rows: int) -> np.ndarray:
    """Stream (N,) -> (B, N // B) int64: row b is the b-th contiguous slice (see the module diagram)."""
    data = np.asarray(ids, dtype=np.int64).reshape(-1)
    cols = data.size // rows
    if cols < 2:
        raise DataError(f"stream of {data.size} tokens is too short for {rows} rows")
    return data[: rows * cols].reshape(rows, cols)  # (B, N // B)


def batchify(ids: Sequence[int] | np.ndarray | torch.Tensor, rows: int) -> torch.Tensor:
    """:func:`batchify_array` as a long tensor (training's windows)."""
    import torch

    return torch.from_numpy(batchify_array(np.asarray(ids), rows))  # (B, N // B)


def stream_rows(n_tokens: int, *limits: int) -> int:
    """Rows for evaluating a stream of ``n_tokens``: the smallest of ``limits``, at least 2 columns."""
    return max(1, min(*limits, n_tokens // 2))


class LMBatch(NamedTuple):
    """``x`` (B, T) inputs, ``y`` (B, T) the next tokens (tensors, or NumPy arrays for a NumPy grid);
    ``first``: the stream's first window (state resets)."""

    x: Any
    y: Any
    first: bool = False


def windows(grid: Any, bptt: int) -> list[LMBatch]:
    """Consecutive BPTT windows over a batchified (B, C) grid, a tensor or an array (the last may be shorter)."""
    out = []
    cols = int(grid.shape[1])
    for i in range(0, cols - 1, bptt):
        t = min(bptt, cols - 1 - i)
        out.append(LMBatch(grid[:, i : i + t], grid[:, i + 1 : i + 1 + t], i == 0))  # (B, t) each
    return out


def collate(examples: list[LMBatch]) -> list[LMBatch]:
    """Consecutive windows -> the list of them, processed in order by the loss (one per training step;
    the trainer groups ``batch_size`` validation windows, which keeps the memory of one window)."""
    return list(examples)


def in_order(epoch: int, generator: torch.Generator, n: int) -> list[list[int]]:
    """Batch sampler: window 0, 1, 2, ... one per step (never shuffled: the hidden state carries over)."""
    return [[i] for i in range(n)]


def stream_metrics(nats: float, level: Level) -> dict[str, float]:
    """Word: ``{"nats_per_token", "perplexity" = e^nats}``; char: ``{"nats_per_char", "bits_per_char" = nats / ln 2}``."""
    if level == "char":
        return {"nats_per_char": nats, "bits_per_char": nats / math.log(2)}
    return {"nats_per_token": nats, "perplexity": math.exp(min(nats, 700.0))}
