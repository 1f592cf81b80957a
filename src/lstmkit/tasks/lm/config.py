"""Every setting of ``lstmkit lm``, declared once (torch-free: the command line reads it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lstmkit.config import Settings, section, setting
from lstmkit.tasks.settings import LSTMSettings, TaskSettings
from lstmkit.tasks.spec import Arg, Command, TaskSpec
from lstmkit.trainer.config import TrainConfig

Level = Literal["word", "char"]
Softmax = Literal["auto", "full", "adaptive"]

#: the most tokens ``predict`` generates per prompt (it keeps every output in memory; ``generate`` streams)
MAX_LENGTH = 100_000
#: the largest seed (torch seeds are 64-bit; prompt i of a batch uses seed + i)
MAX_SEED = 2**63 - 1


@dataclass
class LMConfig(TaskSettings):
    """A language model: how text becomes one token stream cut into BPTT windows, and the network
    (embedding → stacked LSTM → softmax, with AWD-LSTM regularisation).

    ``--dropout`` (the ``lstm`` section) is locked dropout at the stack's three places: on the
    embeddings, between layers and on the top layer's output; ``dropout_in`` / ``dropout_hidden`` /
    ``dropout_out`` override one place each (none: ``--dropout``).
    """

    title = "lm"

    level: Level = setting("word", help="word: whitespace tokens with <eos> at line ends; char: every character")
    bptt: int = setting(35, ge=1, help="truncated-BPTT window length (steps)")
    split: list[float] = setting(
        [0.9, 0.1],
        gt=0,
        le=1,
        metavar="TRAIN,VALID[,TEST]",
        help="contiguous fractions of --data used when --valid is not given (a third one: a test part)",
    )
    min_freq: int = setting(1, ge=1, help="words seen fewer times in training become <unk>")
    max_vocab: int | None = setting(None, ge=1, help="keep at most this many tokens, the most frequent (none: all)")
    lowercase: bool = setting(False, help="lowercase the text")
    eval_batch_size: int = setting(
        10,
        ge=1,
        help="parallel streams when evaluating: each epoch's validation and the final metrics alike (pytorch/examples: 10)",
    )
    embed_size: int = setting(256, ge=1, le=65536, help="embedding size (= the top layer's size with --tie-weights)")
    tie_weights: bool = setting(False, help="share the embedding and output matrices (full softmax only)")
    softmax: Softmax = setting(
        "auto", help="output layer; auto: adaptive softmax for vocabularies over 10k tokens without --tie-weights"
    )
    cutoffs: list[int] = setting(
        [],
        ge=1,
        metavar="C1,C2,...",
        help="adaptive-softmax cluster boundaries, increasing (default: 2000,10000,50000 below the vocabulary size)",
    )
    dropout_in: float | None = setting(
        None, ge=0, lt=1, help="locked dropout on the embeddings, AWD dropouti (none: --dropout)"
    )
    dropout_hidden: float | None = setting(
        None, ge=0, lt=1, help="locked dropout between LSTM layers, AWD dropouth (none: --dropout)"
    )
    dropout_out: float | None = setting(
        None, ge=0, lt=1, help="locked dropout on the top layer's output, AWD dropout (none: --dropout)"
    )
    dropout_emb: float = setting(0.0, ge=0, lt=1, help="embedding dropout: drop whole words, AWD dropoute")
    alpha: float = setting(0.0, ge=0, help="activation regularisation (AR): alpha · mean(dropped output²)")
    beta: float = setting(0.0, ge=0, help="temporal activation regularisation (TAR): beta · mean((h_t - h_{t-1})²)")
    lstm: LSTMSettings = section(
        LSTMSettings, fixed={"bidirectional": False}, hidden_size=256, num_layers=2, dropout=0.2
    )
    train: TrainConfig = section(TrainConfig, epochs=20, batch_size=20, lr=2e-3, patience=3, clip_grad=0.25)

    def metric_names(self) -> tuple[str, ...]:
        return ("bits_per_char", "nats_per_char") if self.level == "char" else ("perplexity", "nats_per_token")

    def check(self) -> None:
        super().check()
        if len(self.split) not in (2, 3) or sum(self.split) > 1 + 1e-9:
            raise self.error("split", "must be 2 or 3 fractions (train,valid[,test]) summing to <= 1", self.split)
        if any(b <= a for a, b in zip(self.cutoffs, self.cutoffs[1:])):
            raise self.error("cutoffs", "must be increasing", self.cutoffs)
        if self.tie_weights and self.softmax == "adaptive":
            raise self.error("tie_weights", "needs the full softmax (--softmax full or auto)")

    def rates(self) -> tuple[float, float, float]:
        """The locked-dropout rates (input, between layers, output): each override, else ``lstm.dropout``."""
        p = self.lstm.dropout
        return tuple(p if r is None else r for r in (self.dropout_in, self.dropout_hidden, self.dropout_out))  # type: ignore[return-value]


@dataclass
class LMEvaluate(Settings):
    """Options of ``lm evaluate`` / ``Predictor.evaluate``."""

    title = "evaluate"

    batch_size: int | None = setting(None, ge=1, help="parallel streams (none: the model's --eval-batch-size)")


@dataclass
class LMPredict(Settings):
    """Options of ``lm predict`` / ``Predictor.predict``: deterministic (greedy) unless a temperature is given."""

    title = "predict"

    length: int = setting(100, ge=0, le=MAX_LENGTH, help="tokens (words or characters) to generate after each prompt")
    temperature: float = setting(0.0, ge=0, help="sampling temperature (0 = greedy: the most likely token)")
    top_k: int = setting(0, ge=0, help="sample among the k most likely tokens (0 = all)")
    top_p: float = setting(1.0, gt=0, le=1, help="nucleus sampling: the smallest set with probability >= p")
    seed: int | None = setting(
        None,
        ge=0,
        le=MAX_SEED,
        help="random seed of the sampling; prompt i uses seed + i (none: a fresh one each call)",
    )
    max_prompt: int = setting(
        2000,
        ge=1,
        help="the longest prompt read, in tokens (words with <eos> at line breaks, or characters): a longer "
        "prompt keeps its LAST this many tokens (the context nearest the continuation), with one warning "
        "giving how many prompts were cut",
    )


@dataclass
class LMGenerate(LMPredict):
    """Options of ``lm generate``: sampling by default."""

    title = "generate"

    length: int = setting(200, ge=0, help="tokens (words or characters) to generate (streamed: no upper limit)")
    temperature: float = setting(1.0, ge=0, help="sampling temperature (0 = greedy: the most likely token)")
    seed: int | None = setting(
        None, ge=0, le=MAX_SEED, help="random seed of the sampling (none: a fresh one each call)"
    )


GENERATE = Command(
    name="generate",
    help="stream sampled text after --prompt, each token printed as soon as it is sampled (one LSTM step per token)",
    run="lstmkit.tasks.lm.generate:run",
    options=LMGenerate,
    args=(Arg("prompt", "text to continue (default: the start of a line)", default=""),),
)

SPEC = TaskSpec(
    name="lm",
    summary="word- and character-level language models, with generation",
    config=LMConfig,
    evaluate=LMEvaluate,
    predict=LMPredict,
    data_help="a plain-text file (word level: whitespace tokens, <eos> at each line end)",
    valid_help="validation text (default: the contiguous --split part of --data after the training part)",
    predict_help="prompts, one per line (an empty line: generate from the start of a line)",
    commands=(GENERATE,),
    description="Truncated-BPTT LSTM language models (AWD-LSTM regularisation, adaptive softmax): "
    "--batch-size is the number of parallel streams, --bptt the window length.",
)
