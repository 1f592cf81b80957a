"""Every setting of ``lstmkit classify``, declared once (torch-free: the command line reads it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lstmkit.config import Settings, section, setting
from lstmkit.tasks.settings import LSTMSettings, TaskSettings
from lstmkit.tasks.spec import TaskSpec
from lstmkit.trainer.config import TrainConfig

InputKind = Literal["text", "numeric"]
TokenizerKind = Literal["word", "whitespace", "char", "bpe"]
TextFormat = Literal["auto", "csv", "tsv", "lines"]
Pooling = Literal["last", "max", "mean", "attention"]


@dataclass
class ClassifyConfig(TaskSettings):
    """A text (or number-sequence) classifier: how files become examples, and the network
    (embedding → (Bi)LSTM → pooling → dropout → linear)."""

    title = "classify"

    input: InputKind = setting(
        "text", help="text, or numeric: each text field is a sequence of numbers (space or comma separated)"
    )
    text_column: str | None = setting(
        None, help="text column of a CSV/TSV (none: guessed: text, sentence, review, ...)"
    )
    label_column: str | None = setting(
        None, help="label column of a CSV/TSV (none: guessed: label, class, target, ...)"
    )
    format: TextFormat = setting(
        "auto",
        help="csv/tsv with a header, or lines of label<TAB>text; auto: a header naming a label column "
        "means a table (.csv comma, else tab)",
    )
    valid_fraction: float = setting(0.1, ge=0, lt=1, help="share of --data held out for validation without --valid")
    tokenizer: TokenizerKind = setting(
        "word", help="word: words and punctuation; whitespace; char; bpe: BPE trained on the training texts"
    )
    lowercase: bool = setting(False, help="lowercase texts before tokenising")
    min_freq: int = setting(1, ge=1, help="words seen fewer times in training become <unk>")
    max_vocab: int | None = setting(None, ge=1, help="keep at most this many words, the most frequent (none: all)")
    bpe_vocab_size: int = setting(8000, ge=8, help="BPE vocabulary size (--tokenizer bpe)")
    max_len: int | None = setting(
        512,
        ge=1,
        help="the longest text, in tokens (numbers for --input numeric): a longer text is cut to its first "
        "this many, with one warning giving how many texts were cut (training, evaluate and predict alike; "
        "none: no limit)",
    )
    embeddings: str | None = setting(
        None, metavar="FILE", help="pretrained word vectors, GloVe/word2vec text format (sets --embed-size)"
    )
    freeze_embeddings: bool = setting(False, help="keep the pretrained vectors fixed")
    embed_size: int = setting(128, ge=1, le=65536, help="embedding size (numeric input: a linear map of each value)")
    word_dropout: float = setting(
        0.0, ge=0, lt=1, help="training only: each token becomes <unk> with this probability (Iyyer et al. 2015)"
    )
    pooling: Pooling = setting("max", help="how the LSTM's outputs become one vector (padding never counts)")
    lstm: LSTMSettings = section(LSTMSettings, hidden_size=128, bidirectional=True, dropout=0.3)
    train: TrainConfig = section(
        TrainConfig, epochs=10, batch_size=64, lr=2e-3, monitor="accuracy", monitor_mode="max", patience=3
    )

    def metric_names(self) -> tuple[str, ...]:
        return ("accuracy", "macro_f1")


@dataclass
class ClassifyEvaluate(Settings):
    """Options of ``classify evaluate`` / ``Predictor.evaluate``."""

    title = "evaluate"

    plot: str | None = setting(None, metavar="PNG", help="also draw the confusion matrix into this PNG")


@dataclass
class ClassifyPredict(Settings):
    """Options of ``classify predict`` / ``Predictor.predict``."""

    title = "predict"

    text_column: str | None = setting(
        None, help="text column of a CSV/TSV --data (none: the training one, else guessed)"
    )


SPEC = TaskSpec(
    name="classify",
    summary="text and sequence classification (sentiment, topics, ...)",
    config=ClassifyConfig,
    evaluate=ClassifyEvaluate,
    predict=ClassifyPredict,
    data_help="a CSV/TSV with a header (e.g. GLUE SST-2), or label<TAB>text lines",
    predict_help="texts, one per line (empty lines give empty outputs), or a CSV/TSV with a text column",
)
