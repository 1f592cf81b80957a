"""The language model's predictor: continuations of prompts, perplexity / bits per char, streaming
generation, streaming sessions (:meth:`LMPredictor.stream`), gates for inspect.

Importable without torch: the network runs in two small methods on NumPy arrays,
:meth:`LMPredictor.next_log_probs` and :meth:`LMPredictor.window_nll` (torch here, the export's ONNX
graphs in :class:`lstmkit.runtime.lm.LMRuntime`), and sampling in :meth:`LMPredictor.draw`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from lstmkit.data.files import read_lines
from lstmkit.data.vocab import UNK, Vocab
from lstmkit.errors import DataError, ModelFolderError, warn
from lstmkit.tasks.base import Predictor
from lstmkit.tasks.lm.config import SPEC, LMConfig, LMEvaluate, LMGenerate, LMPredict
from lstmkit.tasks.lm.data import (
    EOS,
    State,
    batchify_array,
    join_tokens,
    read_stream,
    stream_metrics,
    stream_rows,
    tokenize_lines,
    tokenizer_for,
    windows,
)

if TYPE_CHECKING:  # torch is imported where the network runs: the runtime subclass runs ONNX instead
    from lstmkit.tasks.lm.model import LanguageModel
    from lstmkit.tasks.lm.stream import LMStream

#: the longest prompt read by default (``LMPredict.max_prompt``), also for ``lstmkit inspect``'s sample
DEFAULT_MAX_PROMPT: int = LMPredict().max_prompt


class LMPredictor(Predictor[LMConfig]):
    """``predict(prompts)`` -> one continuation (str) per prompt; ``evaluate(file)``; ``generate`` (streaming).

    A string is one prompt. ``predict`` is deterministic by default (temperature 0: the most likely
    token at each step); with a temperature it samples, reproducibly when given a ``seed``: prompt i
    (from 0) is sampled with its own generator seeded ``seed + i`` (the first prompt's text is what
    ``generate(prompt, seed=seed)`` gives; repeated prompts give different samples).
    An empty prompt continues from the start of a line. A prompt longer than ``max_prompt`` tokens
    keeps its last ``max_prompt`` (one warning line on stderr gives how many prompts were cut), and
    prompt tokens unknown to the model are read as ``<unk>`` (one warning line).
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

    # ------------------------------------------------------------------ the network
    def next_log_probs(self, ids: np.ndarray, state: State | None, every: bool = False) -> tuple[np.ndarray, State]:
        """The network: ``ids`` (B, T) int64 read from ``state`` (None: zeros) -> the log-probabilities of
        the next token after the last position, (B, V) float32 (``every``: after each position, (B, T, V)),
        and the state after the last position. One token from a state runs ``model.step`` (the prefix
        is never re-run), otherwise one forward over the T tokens."""
        import torch

        with torch.no_grad():
            prev = None if state is None else [(torch.from_numpy(h), torch.from_numpy(c)) for h, c in state]
            x = torch.from_numpy(ids)
            if x.size(1) == 1 and prev is not None:
                logp, new = self.model.step(x[:, 0], prev)  # (B, V)
                logp = logp[:, None] if every else logp
            else:
                out = self.model(x, prev)
                hidden, new = out.hidden, out.state  # (B, T, H_top)
                if every:
                    logp = self.model.log_probs(hidden.reshape(-1, hidden.size(-1))).view(*x.shape, -1)
                else:
                    logp = self.model.log_probs(hidden[:, -1])  # (B, V)
            return logp.numpy(), [(h.numpy(), c.numpy()) for h, c in new]

    def window_nll(self, x: np.ndarray, y: np.ndarray, state: State | None) -> tuple[float, State]:
        """The network on one BPTT window: x, y (B, T) int64 -> (summed NLL of ``y`` in nats, new state)."""
        import torch

        with torch.no_grad():
            prev = None if state is None else [(torch.from_numpy(h), torch.from_numpy(c)) for h, c in state]
            out = self.model(torch.from_numpy(x), prev)
            nll = float(self.model.nll(out.hidden, torch.from_numpy(y)))
            return nll, [(h.numpy(), c.numpy()) for h, c in out.state]

    def rng(self, seed: int | None) -> Any:
        """The random generator of one sampled continuation (torch's, seeded; fresh entropy for None)."""
        from lstmkit.tasks.lm.sampling import generator

        return generator(seed)

    def draw(self, logp: np.ndarray, temperature: float, top_k: int, top_p: float, rng: Any) -> int:
        """The next id from log-probabilities (V,): the first most likely at temperature 0, else
        :func:`lstmkit.tasks.lm.sampling.sample_next` with ``rng``."""
        if temperature == 0:
            return int(np.argmax(logp))
        import torch

        from lstmkit.tasks.lm.sampling import sample_next

        return sample_next(torch.from_numpy(logp), temperature, top_k, top_p, rng)

    # ------------------------------------------------------------------ evaluate
    def evaluate_tokens(self, tokens: Sequence[str], batch_size: int | None = None) -> dict[str, Any]:
        """Mean NLL over a token stream cut into ``batch_size`` rows (default ``eval_batch_size``, as each
        epoch's validation), the state carried across windows; word: perplexity, char: nats and bits per
        char; ``tokens`` predicted. ``tokens`` is a list of tokens (a string is refused: use :meth:`evaluate`)."""
        if isinstance(tokens, str) or not isinstance(tokens, Sequence):
            raise DataError(f"tokens: expected a list of tokens, got {type(tokens).__name__} (evaluate() reads text)")
        LMEvaluate(batch_size=batch_size)  # the declared range
        if len(tokens) < 2:
            raise DataError(
                f"tokens: too little text for a language model ({len(tokens)} tokens; at least 2 are needed)"
            )
        rows = stream_rows(len(tokens), batch_size or self.config.eval_batch_size)
        grid = batchify_array(self.vocab.encode(tokens), rows)  # (B, N // B)
        state: State | None = None
        nll, n = 0.0, 0
        for b in windows(grid, self.config.bptt):
            part, state = self.window_nll(np.ascontiguousarray(b.x), np.ascontiguousarray(b.y), state)
            nll += part
            n += b.y.size
        return {**stream_metrics(nll / n, self.config.level), "tokens": n}

    def evaluate_data(self, data: Any, options: LMEvaluate) -> dict[str, Any]:
        """Metrics of a text file (or a list of lines), read as in training; tokens the model does not
        know are scored as ``<unk>`` (one warning line gives how many)."""
        tokens = read_stream(data, self.config)
        unknown = sum(1 for t in tokens if t not in self.vocab)
        if unknown:
            source = os.fspath(data) if isinstance(data, (str, os.PathLike)) else "data"
            warn(f"{source}: {unknown} of {len(tokens)} tokens are not in the model's vocabulary (scored as {UNK})")
        return self.evaluate_tokens(tokens, options.batch_size)

    def format_metrics(self, m: dict[str, Any]) -> str:
        if "bits_per_char" in m:
            return f"{m['nats_per_char']:.4f} nats/char, {m['bits_per_char']:.4f} bits/char ({m['tokens']} characters)"
        return f"perplexity {m['perplexity']:.2f} ({m['nats_per_token']:.4f} nats/token, {m['tokens']} tokens)"

    # ------------------------------------------------------------------ prompts
    def prompt_tokens(self, prompt: str, max_prompt: int | None = None, what: str = "prompt") -> tuple[list[str], int]:
        """The tokens the model reads for ``prompt`` and how many the whole prompt has. Word level:
        whitespace tokens, ``<eos>`` at each line break inside it (as in training; none at its end);
        char level: its characters (``\r\n`` read as ``\n``). Over ``max_prompt`` tokens, only the
        last ``max_prompt`` are kept. A prompt that is not a string raises :class:`DataError`."""
        if not isinstance(prompt, str):
            raise DataError(f"{what}: expected a prompt (a string), got {type(prompt).__name__}")
        prompt = prompt.replace("\r\n", "\n")
        if self.config.level == "word":
            lines = prompt.split("\n")
            toks = tokenize_lines(lines[:-1], self.config) + tokenizer_for(self.config).tokenize(lines[-1])
        else:
            toks = tokenizer_for(self.config).tokenize(prompt)
        n = len(toks)
        if max_prompt is not None and n > max_prompt:
            toks = toks[n - max_prompt :]
        return toks, n

    def encode_prompt(self, prompt: str, max_prompt: int | None = None) -> tuple[list[int], int]:
        """Prompt -> (ids, number of unknown tokens), read as :meth:`prompt_tokens` says."""
        toks, _ = self.prompt_tokens(prompt, max_prompt)
        return self.vocab.encode(toks), sum(1 for t in toks if t not in self.vocab)

    def line_start(self) -> list[int]:
        """What an empty prompt reads: the end of a line."""
        return [self.vocab.index(EOS if self.config.level == "word" else "\n")]

    def start_ids(self, prompt: str, what: str = "prompt", max_prompt: int | None = DEFAULT_MAX_PROMPT) -> list[int]:
        """Prompt ids, with one warning line each for a prompt cut to ``max_prompt`` tokens and for
        tokens unknown to the model; an empty prompt starts after a line end."""
        toks, n = self.prompt_tokens(prompt, max_prompt, what)
        if len(toks) < n:
            warn(f"{what}: {n} tokens, longer than --max-prompt {max_prompt}: only its last {len(toks)} are read")
        ids = self.vocab.encode(toks)
        n_unk = sum(1 for t in toks if t not in self.vocab)
        if ids and n_unk == len(ids):
            warn(f"{what}: all {n_unk} tokens are unknown to the model (read as {UNK})")
        elif n_unk:
            warn(f"{what}: {n_unk} of {len(ids)} tokens are unknown to the model (read as {UNK})")
        return ids or self.line_start()

    # ------------------------------------------------------------------ generation
    def generate(
        self,
        prompt: str = "",
        length: int = 100,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        seed: int | None = None,
        what: str = "prompt",
        max_prompt: int = DEFAULT_MAX_PROMPT,
    ) -> Iterator[str]:
        """Yield ``length`` sampled tokens one at a time (see :func:`~lstmkit.tasks.lm.sampling.sample_next`).

        The options are checked (their declared ranges, ``lm generate``'s) and the prompt read when
        called; the prompt is read once (one forward over it); each new token then costs one ``step`` of
        every layer from the carried state, so the prefix is never re-run.
        """
        LMGenerate(length=length, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed, max_prompt=max_prompt)
        ids = self.start_ids(prompt, what, max_prompt)
        return self._sample(ids, length, temperature, top_k, top_p, seed)

    def _sample(
        self, ids: list[int], length: int, temperature: float, top_k: int, top_p: float, seed: int | None
    ) -> Iterator[str]:
        rng = self.rng(seed)
        logp, state = self.next_log_probs(np.array([ids], dtype=np.int64), None)  # prompt (1, P) read once
        for _ in range(length):
            nxt = self.draw(logp[0], temperature, top_k, top_p, rng)
            yield self.vocab.tokens[nxt]
            logp, state = self.next_log_probs(np.array([[nxt]], dtype=np.int64), state)  # (1, V)

    def continuation(self, prompt: str, options: LMPredict, index: int = 0, what: str = "prompt") -> str:
        """The text generated after ``prompt`` (words joined by spaces, ``<eos>`` as a line end); sampled
        with the seed ``options.seed + index``."""
        return self.predict_items([prompt], options, first=index, names=[what])[0]

    # ------------------------------------------------------------------ predict
    def read(self, path: str, options: LMPredict) -> list[str]:
        """Prompts, one per line (``-``: standard input); an empty line is an empty prompt, never dropped.
        A file (or standard input) without any text is an error."""
        return read_lines(path, "prompts (one per line)")

    def predict_items(
        self, items: list[Any], options: LMPredict, first: int = 0, names: Sequence[str] | None = None
    ) -> list[str]:
        """One continuation per prompt, in order (prompt i sampled with ``seed + first + i``). Prompts cut
        to ``max_prompt`` tokens and prompts with unknown tokens get one warning line each (in total);
        an item that is not a string raises :class:`DataError` naming it."""
        for i, p in enumerate(items):
            if not isinstance(p, str):
                raise DataError(f"input {i + 1}: expected a prompt (a string), got {type(p).__name__}")
        if len(items) == 1:  # one prompt: generate's messages
            ids = [self.start_ids(items[0], names[0] if names else "prompt", options.max_prompt)]
        else:
            read = [self.prompt_tokens(p, options.max_prompt) for p in items]
            self._warn_prompts(read, options.max_prompt)
            ids = [self.vocab.encode(toks) or self.line_start() for toks, _ in read]
        outs = []
        for i, prompt_ids in enumerate(ids):
            seed = None if options.seed is None else options.seed + first + i
            toks = self._sample(prompt_ids, options.length, options.temperature, options.top_k, options.top_p, seed)
            outs.append(join_tokens(toks, self.config.level))
        return outs

    def _warn_prompts(self, read: list[tuple[list[str], int]], max_prompt: int) -> None:
        """One warning line for the prompts cut to ``max_prompt`` tokens, one for unknown tokens."""
        cut = [i for i, (toks, n) in enumerate(read) if len(toks) < n]
        if cut:
            longest = max(read[i][1] for i in cut)
            warn(
                f"{len(cut)} of {len(read)} prompts are longer than --max-prompt {max_prompt} tokens: each keeps "
                f"its last {max_prompt} (the longest has {longest}; first: input {cut[0] + 1})"
            )
        unknown = [sum(1 for t in toks if t not in self.vocab) for toks, _ in read]
        hit = [i for i, u in enumerate(unknown) if u]
        if hit:
            total = sum(len(toks) for toks, _ in read)
            warn(
                f"{len(hit)} of {len(read)} prompts hold tokens unknown to the model, read as {UNK} "
                f"({sum(unknown)} of {total} tokens; first: input {hit[0] + 1})"
            )

    def format_outputs(self, items: list[Any], outputs: list[str], options: LMPredict) -> str:
        """TSV: ``prompt<TAB>continuation``, one row per prompt (``\\n``, ``\\t``, ``\\\\`` escaped, so
        row i belongs to input line i)."""
        rows = ["prompt\tcontinuation"] + [f"{_escape(str(p))}\t{_escape(o)}" for p, o in zip(items, outputs)]
        return "\n".join(rows) + "\n"

    # ------------------------------------------------------------------ streaming sessions
    def stream(self, **options: Any) -> LMStream:
        """A :class:`~lstmkit.tasks.lm.stream.LMStream` (``lstmkit serve``'s sessions): text in token by
        token, the log-probability of what came and the most likely next tokens out."""
        from lstmkit.tasks.lm.stream import LMStream

        return LMStream(self, **options)

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
        """One label per step of :meth:`trace_gates`: the tokens the model reads for ``sample`` (as a
        prompt: ``<eos>`` at its line breaks, its last ``max_prompt`` tokens), ``<eos>`` for an empty one."""
        toks, _ = self.prompt_tokens(sample, DEFAULT_MAX_PROMPT, "sample")
        return [repr(t)[1:-1] for t in toks] if toks else [EOS if self.config.level == "word" else "\\n"]

    def trace_gates(self, sample: str) -> list[Any]:
        """Gate activations of every layer on ``sample`` read as a prompt (one ``lstmkit.nn.Gates`` per
        layer, fields (1, T, H_l); T = ``len(step_labels(sample))``)."""
        import torch

        ids = torch.tensor([self.start_ids(sample, "sample", DEFAULT_MAX_PROMPT)])  # (1, T)
        gates: list[Any] = []
        with torch.no_grad():
            h = self.model.embed(ids)  # (1, T, E)
            for lstm in self.model.layers:
                h, _, g = lstm(h, return_gates=True)  # h (1, T, H_l)
                gates.extend(g)
        return gates


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
