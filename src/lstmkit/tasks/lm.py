"""Language models (word or character level): ``lstmkit lm train|evaluate|generate``.

Training is truncated back-propagation through time over one long token stream::

    text ──► tokens (+ <eos> per line at word level) ──► ids ──► batchify (B rows) ──► windows of T steps
         ──► LanguageModel with the hidden state carried from window to window (detached), reset each epoch

``batchify`` cuts the stream into B contiguous rows (as pytorch/examples' word_language_model, but
batch-first): with the stream ``a b c ... x`` (N = 24) and B = 4::

    ┌ a b c d e f ┐   row b is the b-th slice of N // B tokens (the tail that does not fill a row
    │ g h i j k l │   is dropped); batch i is the columns [i*T, (i+1)*T) of every row, its targets
    │ m n o p q r │   the columns one to the right. Row b of batch i+1 continues row b of batch i,
    └ s t u v w x ┘   which is why the final hidden state of one batch starts the next.

The trainer's default shuffling would break that continuity, so training uses an in-order
``batch_sampler`` (one window per step) and the carried state lives in :class:`CarriedState`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, NamedTuple

import torch

from lstmkit.data.text import CharTokenizer, WhitespaceTokenizer, read_lines
from lstmkit.data.vocab import UNK, Vocab
from lstmkit.errors import DataError, LstmkitError, ModelFolderError
from lstmkit.io import read_folder, save_model
from lstmkit.tasks.lm_model import LanguageModel, LayerState, LMShape, detach_state
from lstmkit.train import TrainConfig, Trainer

TASK = "lm"
EOS = "<eos>"
Level = Literal["word", "char"]
LM_SPECIALS = (UNK,)


@dataclass
class LMConfig:
    """Data and BPTT settings (saved in config.json under ``"data"``).

    Attributes:
        level: ``word`` (whitespace tokens, ``<eos>`` at each line end) or ``char`` (every character).
        bptt: truncated-BPTT window length T.
        min_freq / max_vocab: word vocabulary from the training stream (rarer words -> ``<unk>``).
        lowercase: lowercase the text first.
        split: fractions (train, valid[, test]) of the one ``--data`` file when no ``--valid`` is given.
        eval_batch_size: rows used when evaluating a stream (pytorch/examples uses 10).
    """

    level: Level = "word"
    bptt: int = 35
    min_freq: int = 1
    max_vocab: int | None = None
    lowercase: bool = False
    split: list[float] = field(default_factory=lambda: [0.9, 0.1])
    eval_batch_size: int = 10


# ============================================================================================ data
def tokenizer_for(cfg: LMConfig) -> WhitespaceTokenizer | CharTokenizer:
    return CharTokenizer(cfg.lowercase) if cfg.level == "char" else WhitespaceTokenizer(cfg.lowercase)


def tokenize_lines(lines: Sequence[str], cfg: LMConfig) -> list[str]:
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


def read_stream(path: str | Path, cfg: LMConfig) -> list[str]:
    """A text file as one token stream (UTF-8 checked per line; missing/empty file -> DataError)."""
    tokens = tokenize_lines(read_lines(path), cfg)
    if len(tokens) < 2:
        raise DataError(f"{path}: too little text for a language model ({len(tokens)} tokens)")
    return tokens


def split_stream(tokens: list[str], fractions: Sequence[float], source: str) -> list[list[str]]:
    """Contiguous parts of one stream: (train, valid[, test]) by the given fractions."""
    if not 2 <= len(fractions) <= 3 or any(f <= 0 for f in fractions) or sum(fractions) > 1 + 1e-9:
        raise LstmkitError(f"--split: expected 2 or 3 positive fractions summing to <= 1, got {list(fractions)}")
    n, parts, start = len(tokens), [], 0
    for f in fractions:
        end = min(n, start + int(round(n * f)))
        parts.append(tokens[start:end])
        start = end
    if any(len(p) < 2 for p in parts):
        raise DataError(f"{source}: too short to split into {list(fractions)}")
    return parts


def batchify(ids: Sequence[int] | torch.Tensor, rows: int) -> torch.Tensor:
    """Stream (N,) -> (B, N // B): row b is the b-th contiguous slice (see the module diagram)."""
    data = torch.as_tensor(ids, dtype=torch.long)
    cols = data.numel() // rows
    if cols < 2:
        raise DataError(f"stream of {data.numel()} tokens is too short for {rows} rows")
    return data[: rows * cols].view(rows, cols)  # (B, N // B)


class LMBatch(NamedTuple):
    """``x`` (B, T) inputs, ``y`` (B, T) the next tokens; ``first``: the stream's first window (state resets)."""

    x: torch.Tensor
    y: torch.Tensor
    first: bool = False


def windows(grid: torch.Tensor, bptt: int) -> list[LMBatch]:
    """Consecutive BPTT windows over a batchified (B, C) grid (the last may be shorter)."""
    out = []
    for i in range(0, grid.size(1) - 1, bptt):
        t = min(bptt, grid.size(1) - 1 - i)
        out.append(LMBatch(grid[:, i : i + t], grid[:, i + 1 : i + 1 + t], i == 0))  # (B, t) each
    return out


def collate(examples: list[LMBatch]) -> list[LMBatch]:
    """Consecutive windows -> the list of them, processed in order by the loss (one per training step;
    the trainer groups ``batch_size`` validation windows, which keeps the memory of one window)."""
    return list(examples)


def in_order(epoch: int, generator: torch.Generator, n: int) -> list[list[int]]:
    """Batch sampler: window 0, 1, 2, ... one per step (never shuffled: the hidden state carries over)."""
    return [[i] for i in range(n)]


# ============================================================================================ carried state
class CarriedState:
    """The hidden state carried between BPTT windows, one per mode.

    The training state is reset at the start of each epoch (``on_epoch_start``, and at the stream's first
    window). The evaluation state and the sums ``eval_nll`` / ``eval_tokens`` (for :meth:`metrics`) are reset
    at the validation stream's first window, so each validation pass starts from zeros and carries through
    the stream in order.
    """

    def __init__(self, shape: LMShape, level: Level) -> None:
        self.shape, self.level = shape, level
        self.train_state: list[LayerState] | None = None
        self.eval_state: list[LayerState] | None = None
        self.eval_nll, self.eval_tokens = 0.0, 0

    def reset(self, trainer: Any = None) -> None:
        self.train_state = None

    def loss_fn(self, model: torch.nn.Module, batch: list[LMBatch]) -> torch.Tensor:
        """Mean NLL per token (+ AR/TAR when training) over the windows in order, advancing the state."""
        net: LanguageModel = getattr(model, "module", model)
        if not model.training:
            nll, n = 0.0, 0
            for w in batch:
                if w.first:
                    self.eval_state, self.eval_nll, self.eval_tokens = None, 0.0, 0
                out = model(w.x, self.eval_state)
                self.eval_state = detach_state(out.state)
                nll += float(net.nll(out.hidden, w.y))
                n += w.y.numel()
            self.eval_nll += nll
            self.eval_tokens += n
            return torch.tensor(nll / n)
        loss: Any = 0.0
        n = sum(w.y.numel() for w in batch)
        for w in batch:
            if w.first:
                self.train_state = None
            out = model(w.x, self.train_state)
            self.train_state = detach_state(out.state)
            loss = loss + net.nll(out.hidden, w.y) / n
            s = self.shape
            if s.alpha:
                loss = loss + s.alpha * out.hidden.pow(2).mean() / len(batch)  # AR
            if s.beta:
                loss = loss + s.beta * (out.raw[:, 1:] - out.raw[:, :-1]).pow(2).mean() / len(batch)  # TAR
        return loss

    def metrics(self, model: torch.nn.Module, batches: list) -> dict[str, float]:
        """``evaluate`` for the trainer: perplexity (word) or bits per char, from the pass just run."""
        return stream_metrics(self.eval_nll / max(1, self.eval_tokens), self.level)


def stream_metrics(nats: float, level: Level) -> dict[str, float]:
    """Word: ``{"nats_per_token", "perplexity"}``; char: ``{"nats_per_char", "bits_per_char"}``."""
    if level == "char":
        return {"nats_per_char": nats, "bits_per_char": nats / math.log(2)}
    return {"nats_per_token": nats, "perplexity": math.exp(min(nats, 700.0))}


# ============================================================================================ train
@dataclass
class LMResult:
    predictor: LMPredictor
    metrics: dict[str, Any]


def _streams(
    data: str | Path, valid: str | Path | None, test: str | Path | None, cfg: LMConfig
) -> tuple[list[str], list[str], list[str] | None]:
    tokens = read_stream(data, cfg)
    if valid is not None:
        return tokens, read_stream(valid, cfg), (read_stream(test, cfg) if test is not None else None)
    parts = split_stream(tokens, cfg.split, str(data))
    return parts[0], parts[1], (parts[2] if len(parts) == 3 else read_stream(test, cfg) if test else None)


def train(
    data: str | Path,
    valid: str | Path | None = None,
    out: str | Path | None = None,
    config: LMConfig | None = None,
    model: LMShape | None = None,
    train_config: TrainConfig | None = None,
    test: str | Path | None = None,
    callbacks: Sequence[tuple[str, Callable[[Trainer], None]]] = (),
) -> LMResult:
    """Train a language model on the text file ``data``; validate on ``valid`` (or a ``config.split`` part).

    ``train_config.batch_size`` is the number of rows B of the batchified stream. Returns the predictor
    and the final metrics (validation, and test if a test stream was given), saved in ``out``.
    ``callbacks``: extra ``(event, fn)`` trainer hooks (e.g. to count steps or stop early).
    """
    cfg = config or LMConfig()
    tcfg = train_config or TrainConfig()
    if cfg.bptt < 1:
        raise LstmkitError(f"--bptt must be >= 1 (got {cfg.bptt})")
    train_toks, valid_toks, test_toks = _streams(data, valid, test, cfg)
    vocab = Vocab.build([train_toks], min_freq=cfg.min_freq, max_size=cfg.max_vocab, specials=LM_SPECIALS)
    shape = replace(model or LMShape(), vocab_size=len(vocab))
    torch.manual_seed(tcfg.seed)
    try:
        net = LanguageModel(shape)
    except ValueError as e:
        raise LstmkitError(str(e)) from None
    train_set = windows(batchify(vocab.encode(train_toks), tcfg.batch_size), cfg.bptt)
    valid_rows = max(1, min(tcfg.batch_size, cfg.eval_batch_size, len(valid_toks) // 2))
    valid_set = windows(batchify(vocab.encode(valid_toks), valid_rows), cfg.bptt)
    carried = CarriedState(shape, cfg.level)
    trainer = Trainer(
        net,
        tcfg,
        train_set,
        collate,
        carried.loss_fn,
        valid_set=valid_set,
        evaluate=carried.metrics,
        batch_sampler=in_order,
        out_dir=out,
    )
    trainer.add_callback("on_epoch_start", carried.reset)
    for event, fn in callbacks:
        trainer.add_callback(event, fn)
    trainer.fit()
    predictor = LMPredictor(net.cpu().eval(), vocab, cfg, shape, tcfg)
    predictor.sample = predictor.join(valid_toks[: 200 if cfg.level == "char" else 60]).strip()
    metrics: dict[str, Any] = {"valid": predictor.evaluate_tokens(valid_toks)}
    if test_toks is not None:
        metrics["test"] = predictor.evaluate_tokens(test_toks)
    if out is not None:
        predictor.save(out, metrics)
    return LMResult(predictor, metrics)


# ============================================================================================ predictor
class LMPredictor:
    """A trained language model: ``evaluate_tokens``, ``generate`` (streaming), ``trace_gates``."""

    task = TASK

    def __init__(
        self,
        model: LanguageModel,
        vocab: Vocab,
        config: LMConfig,
        shape: LMShape,
        train_config: TrainConfig | None = None,
        sample: str = "",
    ) -> None:
        self.model = model.cpu().eval()
        self.vocab, self.config, self.shape, self.train_config = vocab, config, shape, train_config
        self.sample = sample  # a piece of validation text kept for `lstmkit inspect`

    def save(self, folder: str | Path, metrics: dict[str, Any] | None = None) -> None:
        cfg = {
            "data": asdict(self.config),
            "model": asdict(self.shape),
            "train": self.train_config.to_dict() if self.train_config else None,
        }
        save_model(
            folder,
            TASK,
            cfg,
            self.model,
            transforms={"vocab": self.vocab.to_json(), "sample": {"text": self.sample}},
            metrics=metrics,
        )

    @torch.no_grad()
    def evaluate_tokens(self, tokens: Sequence[str], batch_size: int | None = None) -> dict[str, float]:
        """Mean NLL over a token stream, state carried across windows; word: perplexity, char: bits/char."""
        rows = max(1, min(batch_size or self.config.eval_batch_size, len(tokens) // 2))
        grid = batchify(self.vocab.encode(tokens), rows)
        state, nll, n = None, 0.0, 0
        for b in windows(grid, self.config.bptt):
            out = self.model(b.x, state)
            state = out.state
            nll += float(self.model.nll(out.hidden, b.y))
            n += b.y.numel()
        return {**stream_metrics(nll / n, self.config.level), "tokens": n}

    def evaluate_file(self, path: str | Path, batch_size: int | None = None) -> dict[str, float]:
        return self.evaluate_tokens(read_stream(path, self.config), batch_size)

    def encode_prompt(self, prompt: str) -> tuple[list[int], int]:
        """Prompt -> (ids, number of unknown tokens). Word level splits on whitespace (no ``<eos>`` added)."""
        toks = tokenizer_for(self.config).tokenize(prompt)
        return self.vocab.encode(toks), sum(1 for t in toks if t not in self.vocab)

    def start_ids(self, prompt: str) -> list[int]:
        """Prompt ids, warning about unknown tokens; an empty prompt starts after a line end."""
        ids, n_unk = self.encode_prompt(prompt)
        if ids and n_unk == len(ids):
            warnings.warn(f"prompt: all {n_unk} tokens are unknown to the model (read as {UNK})", stacklevel=2)
        elif n_unk:
            warnings.warn(
                f"prompt: {n_unk} of {len(ids)} tokens are unknown to the model (read as {UNK})", stacklevel=2
            )
        if not ids:
            start = EOS if self.config.level == "word" else "\n"
            ids = [self.vocab.index(start)]
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
    ) -> Iterator[str]:
        """Yield ``length`` sampled tokens one at a time.

        The prompt is read once (one forward over it); each new token then costs one ``step`` of every
        layer from the carried state, so the prefix is never re-run. ``temperature`` 0 is greedy;
        ``top_k`` > 0 keeps the k most likely tokens; ``top_p`` < 1 keeps the smallest set whose
        probability reaches p (nucleus sampling).
        """
        check_sampling(temperature, top_k, top_p, length)
        gen = torch.Generator().manual_seed(seed if seed is not None else torch.seed() % 2**63)
        ids = self.start_ids(prompt)
        out = self.model(torch.tensor([ids]), None)  # prompt (1, P) read once
        state = out.state
        logp = self.model.log_probs(out.hidden[:, -1])  # (1, V)
        for _ in range(length):
            nxt = sample_next(logp[0], temperature, top_k, top_p, gen)
            yield self.vocab.tokens[nxt]
            logp, state = self.model.step(torch.tensor([nxt]), state)  # (1, V)

    def join(self, tokens: Sequence[str]) -> str:
        """Tokens -> text (characters concatenated; words separated by spaces, ``<eos>`` as a line end)."""
        if self.config.level == "char":
            return "".join(tokens)
        return " ".join("\n" if t == EOS else t for t in tokens).replace(" \n ", "\n")

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

    def trace_gates(self, sample: str) -> list:
        """Gate activations of every layer on ``sample`` (one ``lstmkit.nn.Gates`` per layer, fields (1, T, H_l))."""
        ids = torch.tensor([self.start_ids(sample)])  # (1, T)
        gates = []
        with torch.no_grad():
            h = self.model.embed(ids)  # (1, T, E)
            for lstm in self.model.layers:
                h, _, g = lstm(h, return_gates=True)  # h (1, T, H_l)
                gates.extend(g)
        return gates


def check_sampling(temperature: float, top_k: int, top_p: float, length: int) -> None:
    if not (temperature >= 0 and math.isfinite(temperature)):
        raise LstmkitError(f"--temperature must be >= 0 (got {temperature})")
    if top_k < 0:
        raise LstmkitError(f"--top-k must be >= 0 (got {top_k})")
    if not 0 < top_p <= 1:
        raise LstmkitError(f"--top-p must be in (0, 1] (got {top_p})")
    if length < 0:
        raise LstmkitError(f"--length must be >= 0 (got {length})")


def sample_next(logp: torch.Tensor, temperature: float, top_k: int, top_p: float, gen: torch.Generator) -> int:
    """One id from log-probabilities (V,) with temperature, top-k and nucleus (top-p) filtering."""
    if temperature == 0:
        return int(logp.argmax())
    logits = logp.double() / temperature
    if 0 < top_k < logits.numel():
        kth = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = logits.sort(descending=True)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        drop = cum - sorted_logits.softmax(-1) >= top_p  # tokens after the set reaching p
        logits = logits.masked_fill(torch.zeros_like(drop).scatter(0, order, drop), float("-inf"))
    probs = logits.softmax(-1)
    return int(torch.multinomial(probs, 1, generator=gen))


def load_predictor(folder: str | Path) -> LMPredictor:
    """Rebuild an LM predictor from a model folder (no unpickling); mismatches raise ModelFolderError."""
    mf = read_folder(folder)
    try:
        cfg = LMConfig(**mf.config["data"])
        shape = LMShape(**mf.config["model"])
    except (KeyError, TypeError) as e:
        raise ModelFolderError(f"{folder}/config.json: not a language-model folder ({e})") from None
    if "vocab" not in mf.transforms:
        raise ModelFolderError(f"{folder}: vocab.json missing")
    vocab = Vocab.from_json(mf.transforms["vocab"])
    if len(vocab) != shape.vocab_size:
        raise ModelFolderError(f"{folder}/vocab.json: {len(vocab)} tokens, the model was built for {shape.vocab_size}")
    net = mf.load_into(LanguageModel(shape))
    tcfg = TrainConfig.from_dict(mf.config["train"], strict=False) if mf.config.get("train") else None
    sample = str(mf.transforms.get("sample", {}).get("text", ""))
    return LMPredictor(net, vocab, cfg, shape, tcfg, sample=sample)
