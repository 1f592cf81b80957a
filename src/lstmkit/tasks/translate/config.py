"""Every setting of ``lstmkit translate``, declared once (torch-free: the command line reads it).

``--hidden-size`` is units per direction, as in every task: the bidirectional encoder has
``hidden_size`` units per direction (its memory is ``2 × hidden_size`` wide) and the decoder
``2 × hidden_size`` units. Before the task contract it was the total (H/2 per encoder direction):
the old default 512 is the new default 256, the same network.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lstmkit.config import Settings, section, setting
from lstmkit.tasks.settings import LSTMSettings, TaskSettings
from lstmkit.tasks.spec import Arg, TaskSpec
from lstmkit.trainer.config import TrainConfig

TokenizerMode = Literal["bpe", "whitespace"]
AttentionKind = Literal["bahdanau", "general", "dot"]
Device = Literal["cpu", "cuda"]


@dataclass
class TranslateConfig(TaskSettings):
    """A translator: how text becomes ids (tokeniser, vocabularies) and the network (embeddings →
    BiLSTM encoder → attentional LSTM decoder with input feeding → output layer), trained with
    label-smoothed cross-entropy and selected on validation BLEU."""

    title = "translate"

    valid_fraction: float = setting(
        0.05,
        ge=0,
        lt=1,
        help="share of --data held out (seeded) for validation BLEU without --valid (0: none, the best epoch "
        "by training loss)",
    )
    tokenizer: TokenizerMode = setting(
        "bpe", help="bpe: subwords (Hugging Face tokenizers, detokenises losslessly); whitespace: pre-tokenised words"
    )
    vocab_size: int = setting(
        8000, ge=8, le=1_000_000, help="vocabulary size per side (or of the shared one), specials included"
    )
    shared_vocab: bool = setting(False, help="one vocabulary for source and target")
    lowercase: bool = setting(False, help="lowercase all text (BLEU is then case-insensitive)")
    max_length: int = setting(
        100,
        ge=1,
        help="longest sentence in tokens: longer sources and targets are truncated to it in training, evaluate and "
        "predict, with one warning giving the count",
    )
    embed_size: int = setting(256, ge=1, le=65536, help="source and target embedding size")
    attention: AttentionKind = setting(
        "general", help="attention score: bahdanau (additive), general (Luong bilinear) or dot (Luong)"
    )
    tie_embeddings: bool = setting(
        True, help="tie the output layer to the target embeddings (the attentional vector is then --embed-size wide)"
    )
    label_smoothing: float = setting(0.1, ge=0, lt=1, help="label smoothing epsilon of the cross-entropy")
    valid_beam: int = setting(1, ge=1, le=1000, help="beam for the validation BLEU of each epoch (1 = greedy)")
    alpha: float = setting(
        1.0, ge=0, help="length normalisation: score = logprob / length**alpha (also predict's default)"
    )
    max_ratio: float = setting(
        2.0, gt=0, le=100, help="longest output: ceil(max_ratio × source length) + 5 tokens (also predict's default)"
    )
    lstm: LSTMSettings = section(
        LSTMSettings,
        help="encoder and decoder LSTMs",
        fixed={"bidirectional": True},
        notes={
            "hidden_size": "translate: of the encoder, which is bidirectional (memory 2 × this wide); the decoder "
            "has 2 × this many units",
            "dropout": "translate: on the source and target embeddings, between LSTM layers and on the attentional "
            "vector before the output layer",
        },
        hidden_size=256,
        dropout=0.3,
    )
    train: TrainConfig = section(TrainConfig, batch_size=64, monitor="bleu", monitor_mode="max", patience=3)

    def metric_names(self) -> tuple[str, ...]:
        return ("bleu", "chrf")


@dataclass
class DecodeSettings(Settings):
    """Options of beam search (shared by evaluate and predict)."""

    title = "decoding"

    beam: int = setting(5, ge=1, le=1000, help="beam size (1 = greedy)")
    alpha: float | None = setting(
        None, ge=0, help="length normalisation power: score = logprob / length**alpha (none: the model's --alpha)"
    )
    max_ratio: float | None = setting(
        None, gt=0, le=100, help="output length limit × source length (none: the model's --max-ratio)"
    )
    batch_size: int = setting(64, ge=1, help="sentences decoded together")
    device: Device = setting("cpu", help="device for decoding")


@dataclass
class TranslateEvaluate(DecodeSettings):
    """Options of ``translate evaluate`` / ``Predictor.evaluate``."""

    title = "evaluate"


@dataclass
class TranslatePredict(DecodeSettings):
    """Options of ``translate predict`` / ``Predictor.predict``."""

    title = "predict"

    nbest: int = setting(
        1,
        ge=1,
        help="hypotheses per sentence (<= --beam): outputs get an 'nbest' list; the text output prints "
        "'rank<TAB>score<TAB>text' lines and a blank line after each sentence",
    )
    scores: bool = setting(False, help="text output: prefix each translation with its normalised score and a tab")
    plot_attention: str | None = setting(
        None, metavar="PNG", help="write the attention heatmap of one input sentence to this PNG"
    )
    plot_index: int = setting(0, ge=0, help="which input line (0-based) --plot-attention shows")

    def check(self) -> None:
        if self.nbest > self.beam:
            raise self.error("nbest", f"must be <= --beam ({self.beam})", self.nbest)


_PAIR_ARGS = (
    Arg("source", "source file, one sentence per line (with --target, instead of --data)"),
    Arg("target", "target file, line-aligned with --source"),
    Arg("src_lang", "with --data PREFIX: read PREFIX.SRC_LANG as the source (default: de)"),
    Arg("tgt_lang", "with --data PREFIX: read PREFIX.TGT_LANG as the target (default: en)"),
)

SPEC = TaskSpec(
    name="translate",
    summary="machine translation: LSTM encoder-decoder with attention",
    config=TranslateConfig,
    evaluate=TranslateEvaluate,
    predict=TranslatePredict,
    data_help="a TSV of source<TAB>target lines; or PREFIX with PREFIX.de / PREFIX.en (see --src-lang); "
    "or use --source/--target",
    predict_help="source sentences, one per line (empty lines give empty outputs)",
    train_args=(
        *_PAIR_ARGS,
        Arg("valid_source", "validation source file (with --valid-target, instead of --valid)"),
        Arg("valid_target", "validation target file, line-aligned with --valid-source"),
    ),
    evaluate_args=_PAIR_ARGS,
    renamed={"--emb-size": "--embed-size"},
    inputs="lstmkit.tasks.translate.data:fold_inputs",
    description="A bidirectional LSTM encoder (--hidden-size units per direction) and an LSTM decoder "
    "(2 × --hidden-size units) with attention and input feeding; BLEU and chrF with sacrebleu.",
)
