"""The language model's predictor: continuations of prompts, perplexity / bits per char, streaming
generation, gates for inspect."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from lstmkit.data.text import read_lines
from lstmkit.data.vocab import UNK, Vocab
from lstmkit.errors import DataError, ModelFolderError
from lstmkit.tasks.base import Predictor
from lstmkit.tasks.lm.config import SPEC, LMConfig, LMEvaluate, LMPredict
from lstmkit.tasks.lm.data import (
    EOS,
    batchify,
    join_tokens,
    read_stream,
    stream_metrics,
    stream_rows,
    tokenize_lines,
    tokenizer_for,
    windows,
)
from lstmkit.tasks.lm.model import LanguageModel
from lstmkit.tasks.lm.sampling import generator, sample_next


class LMPredictor(Predictor[LMConfig]):
    """``predict(prompts)`` -> one continuation (str) per prompt; ``evaluate(file)``; ``generate`` (streaming).

    A string is one prompt. ``predict`` is deterministic by default (temperature 0: the most likely
    token at each step); with a temperature it samples, reproducibly when given a ``seed``: prompt i
    (from 0) is sampled with its own generator seeded ``seed + i`` (the first prompt's text is what
    ``generate(prompt, seed=seed)`` gives; repeated prompts give different samples).
    An empty prompt continues from the start of a line.
    """

    spec = SPEC
    model: LanguageModel

    def setup(self) -> None:
        if "vocab" not in self.transforms:
            raise ModelFolderError("vocab.json: missing from the model folder")
        try:
            self.vocab = Vocab.from_json(self.transforms["vocab"])
        except ModelFolderError as e:
            raise ModelFolderError(f"vocab.json: {e}") from None
        want = int(self.dims.get("vocab_size", -1))
        if len(self.vocab) != want:
            raise ModelFolderError(f"vocab.json: {len(self.vocab)} tokens, the model was built for {want}")
        self.sample = str(self.transforms.get("sample", {}).get("text", ""))

    # ------------------------------------------------------------------ evaluate
    @torch.no_grad()
    def evaluate_tokens(self, tokens: Sequence[str], batch_size: int | None = None) -> dict[str, Any]:
        """Mean NLL over a token stream cut into ``batch_size`` rows (default ``eval_batch_size``), the
        state carried across windows; word: perplexity, char: nats and bits per char; ``tokens`` predicted."""
        rows = stream_rows(len(tokens), batch_size or self.config.eval_batch_size)
        grid = batchify(self.vocab.encode(tokens), rows)  # (B, N // B)
        state, nll, n = None, 0.0, 0
        for b in windows(grid, self.config.bptt):
            out = self.model(b.x, state)
            state = out.state
            nll += float(self.model.nll(out.hidden, b.y))
            n += b.y.numel()
        return {**stream_metrics(nll / n, self.config.level), "tokens": n}

    def evaluate_data(self, data: Any, options: LMEvaluate) -> dict[str, Any]:
        """Metrics of a text file (or a list of lines), read as in training."""
        return self.evaluate_tokens(read_stream(data, self.config), options.batch_size)

    def format_metrics(self, m: dict[str, Any]) -> str:
        if "bits_per_char" in m:
            return f"{m['nats_per_char']:.4f} nats/char, {m['bits_per_char']:.4f} bits/char ({m['tokens']} characters)"
        return f"perplexity {m['perplexity']:.2f} ({m['nats_per_token']:.4f} nats/token, {m['tokens']} tokens)"

    # ------------------------------------------------------------------ generation
    def encode_prompt(self, prompt: str) -> tuple[list[int], int]:
        """Prompt -> (ids, number of unknown tokens). Word level: whitespace tokens, ``<eos>`` at each line
        break inside the prompt (as in training; none is added at its end)."""
        if self.config.level == "word":
            lines = prompt.split("\n")
            toks = tokenize_lines(lines[:-1], self.config) + tokenizer_for(self.config).tokenize(lines[-1])
        else:
            toks = tokenizer_for(self.config).tokenize(prompt)
        return self.vocab.encode(toks), sum(1 for t in toks if t not in self.vocab)

    def start_ids(self, prompt: str, what: str = "prompt") -> list[int]:
        """Prompt ids, warning about unknown tokens; an empty prompt starts after a line end."""
        ids, n_unk = self.encode_prompt(prompt)
        if ids and n_unk == len(ids):
            warnings.warn(f"{what}: all {n_unk} tokens are unknown to the model (read as {UNK})", stacklevel=3)
        elif n_unk:
            warnings.warn(
                f"{what}: {n_unk} of {len(ids)} tokens are unknown to the model (read as {UNK})", stacklevel=3
            )
        if not ids:
            ids = [self.vocab.index(EOS if self.config.level == "word" else "\n")]
        return ids

    @torch.no_grad()
    def generate(
        self,
        prompt: str = "",
        length: int = 100,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        seed: int | None = None,
        what: str = "prompt",
    ) -> Iterator[str]:
        """Yield ``length`` sampled tokens one at a time (see :func:`~lstmkit.tasks.lm.sampling.sample_next`).

        The prompt is read once (one forward over it); each new token then costs one ``step`` of every
        layer from the carried state, so the prefix is never re-run.
        """
        LMPredict(length=length, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)  # checks ranges
        gen = generator(seed)
        ids = self.start_ids(prompt, what)
        out = self.model(torch.tensor([ids]), None)  # prompt (1, P) read once
        state = out.state
        logp = self.model.log_probs(out.hidden[:, -1])  # (1, V)
        for _ in range(length):
            nxt = sample_next(logp[0], temperature, top_k, top_p, gen)
            yield self.vocab.tokens[nxt]
            logp, state = self.model.step(torch.tensor([nxt]), state)  # (1, V)

    def continuation(self, prompt: str, options: LMPredict, index: int = 0, what: str = "prompt") -> str:
        """The text generated after ``prompt`` (words joined by spaces, ``<eos>`` as a line end); sampled
        with the seed ``options.seed + index``."""
        seed = None if options.seed is None else options.seed + index
        toks = self.generate(prompt, options.length, options.temperature, options.top_k, options.top_p, seed, what)
        return join_tokens(toks, self.config.level)

    # ------------------------------------------------------------------ predict
    def read(self, path: str, options: LMPredict) -> list[str]:
        """Prompts, one per line (``-``: standard input); an empty line is an empty prompt, never dropped."""
        return read_lines(path, allow_empty=True)

    def predict_items(self, items: list[Any], options: LMPredict) -> list[str]:
        return [
            self.continuation(str(p), options, i, f"prompt {i + 1}" if len(items) > 1 else "prompt")
            for i, p in enumerate(items)
        ]

    def format_outputs(self, items: list[Any], outputs: list[str], options: LMPredict) -> str:
        """TSV: ``prompt<TAB>continuation``, one row per prompt (``\\n``, ``\\t``, ``\\\\`` escaped, so
        row i belongs to input line i)."""
        rows = ["prompt\tcontinuation"] + [f"{_escape(str(p))}\t{_escape(o)}" for p, o in zip(items, outputs)]
        return "\n".join(rows) + "\n"

    # ------------------------------------------------------------------ lstmkit inspect
    num_directions = 1

    def inspect_sample(self, data: str | None = None, index: int = 0) -> str:
        """The ``index``-th non-empty line of the text file ``data``, or the sample saved at training time."""
        if data is None:
            if not self.sample:
                raise DataError("this model folder has no saved sample: pass --data")
            return self.sample
        lines = [ln for ln in read_lines(data) if ln.strip()]
        if not 0 <= index < len(lines):
            raise DataError(f"{data}: --index {index} out of range ({len(lines)} non-empty lines)")
        return lines[index]

    def step_labels(self, sample: str) -> list[str]:
        toks = tokenizer_for(self.config).tokenize(sample)
        return [repr(t)[1:-1] for t in toks] if toks else [EOS if self.config.level == "word" else "\\n"]

    def trace_gates(self, sample: str) -> list[Any]:
        """Gate activations of every layer on ``sample`` (one ``lstmkit.nn.Gates`` per layer, fields (1, T, H_l))."""
        ids = torch.tensor([self.start_ids(sample, "sample")])  # (1, T)
        gates: list[Any] = []
        with torch.no_grad():
            h = self.model.embed(ids)  # (1, T, E)
            for lstm in self.model.layers:
                h, _, g = lstm(h, return_gates=True)  # h (1, T, H_l)
                gates.extend(g)
        return gates


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
