"""``lstmkit lm generate``: text streamed token by token as it is sampled."""

from __future__ import annotations

import itertools
import sys
from typing import Any

from lstmkit.errors import ModelFolderError
from lstmkit.tasks.lm.config import LMGenerate
from lstmkit.tasks.lm.data import text_pieces
from lstmkit.tasks.lm.predict import LMPredictor


def run(args: dict[str, Any], options: LMGenerate) -> int:
    """``lstmkit lm generate --model DIR [--prompt TEXT] [--length N] ...``: the prompt, then each token
    written and flushed as soon as it is sampled. The prompt is read before anything is written: a prompt
    cut to ``--max-prompt`` tokens and prompt tokens unknown to the model give one warning line each on
    stderr. ``--model`` may be an export folder (``lstmkit export``): the runtime samples, without torch."""
    pred = _load(args["model"])
    prompt = args.get("prompt") or ""
    tokens = pred.generate(
        prompt,
        options.length,
        options.temperature,
        options.top_k,
        options.top_p,
        options.seed,
        max_prompt=options.max_prompt,
    )
    first = next(tokens, None)  # the first forward pass: an error comes before any output
    out = sys.stdout
    out.write(prompt)
    line_start = prompt == "" or prompt.endswith("\n")
    rest = itertools.chain([] if first is None else [first], tokens)
    for piece in text_pieces(rest, pred.config.level, line_start):
        out.write(piece)
        out.flush()  # stream: each token appears as soon as it is sampled
    out.write("\n")
    out.flush()
    return 0


def _load(folder: str) -> LMPredictor:
    """The predictor of a model folder (torch) or of an export folder (lstmkit.runtime)."""
    from lstmkit import runtime

    header = runtime.read_header(folder)
    if header is None:
        pred = LMPredictor.load(folder)
    elif header.get("task") != "lm":
        raise ModelFolderError(f"{folder}: a {header.get('task')!r} export, not a 'lm' model")
    else:
        pred = runtime.load(folder)
    assert isinstance(pred, LMPredictor)
    return pred
