"""Every setting of ``lstmkit tag``, declared once (torch-free: the command line reads it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lstmkit.config import Settings, section, setting
from lstmkit.tasks.settings import LSTMSettings, TaskSettings
from lstmkit.tasks.spec import TaskSpec
from lstmkit.trainer.config import TrainConfig

DataFormat = Literal["conll", "conllu"]
PredictFormat = Literal["auto", "text", "conll", "conllu"]
SchemeChoice = Literal["auto", "IOB1", "IOB2", "IOBES", "none"]
ModelScheme = Literal["IOBES", "IOB2"]
CharEncoderKind = Literal["cnn", "lstm", "none"]
ConlluTag = Literal["upos", "xpos"]

#: ``--monitor auto``: resolved by the task in ``prepare`` (f1 for chunk tags, accuracy for plain labels)
AUTO = "auto"
#: ``--max-len``'s default: the longest sentence read whole, in tokens
DEFAULT_MAX_LEN = 512


@dataclass
class TagConfig(TaskSettings):
    """A BiLSTM-CRF tagger: how files become sentences and tags, and the network
    (word + character + casing features → BiLSTM → linear emissions → CRF or softmax)."""

    title = "tag"

    format: DataFormat = setting(
        "conll",
        help="conll: token in column 0, tag in --tag-column, blank lines between sentences, -DOCSTART- "
        "skipped; conllu: CoNLL-U, tag from --tag",
    )
    tag_column: int = setting(-1, help="CoNLL column holding the tag (0-based; negative counts from the end)")
    tag: ConlluTag = setting("upos", help="which CoNLL-U column holds the tag (--format conllu): upos or xpos")
    scheme: SchemeChoice = setting(
        "auto",
        help="tagging scheme of the data; auto detects it (mixed schemes are an error; saved resolved); "
        "none = plain labels such as POS tags",
    )
    model_scheme: ModelScheme = setting(
        "IOBES", help="scheme the model learns chunk tags in (predictions come back in the data's scheme)"
    )
    lowercase: bool = setting(True, help="lowercase words for the word lookup (characters keep their case)")
    zeros: bool = setting(True, help="map every digit to 0 for the word lookup (characters keep them)")
    min_freq: int = setting(1, ge=1, help="training words seen fewer times become <unk>")
    max_word_len: int = setting(40, ge=1, help="characters per word given to the character encoder")
    max_len: int | None = setting(
        DEFAULT_MAX_LEN,
        ge=1,
        help="the longest sentence, in tokens: a longer one is cut into consecutive pieces of at most this many "
        "tokens, each trained on / tagged on its own (every token keeps its tag), with one warning giving how "
        "many sentences were cut; training, evaluate and predict alike (none: no limit)",
    )
    embeddings: str | None = setting(
        None,
        metavar="FILE",
        help="pretrained word vectors, GloVe/word2vec text format, which set --embed-size (none: random vectors)",
    )
    freeze_embeddings: bool = setting(False, help="keep the pretrained word vectors fixed")
    valid_fraction: float = setting(0.1, ge=0, lt=1, help="share of --data held out for validation without --valid")
    embed_size: int = setting(100, ge=1, le=65536, help="word embedding size (the file's size with --embeddings)")
    char_encoder: CharEncoderKind = setting(
        "cnn", help="character features per word: cnn (Ma & Hovy 2016), lstm (char BiLSTM, Lample et al. 2016) or none"
    )
    char_dim: int = setting(30, ge=1, help="character embedding size")
    char_hidden: int = setting(30, ge=1, help="char CNN filters, or char LSTM units per direction")
    char_kernel: int = setting(3, ge=1, help="char CNN window width (odd)")
    casing: bool = setting(True, help="casing-class features (all lower, initial upper, numeric, ...)")
    casing_dim: int = setting(8, ge=1, help="casing-class embedding size")
    unk_replace: float = setting(
        0.5, ge=0, le=1, help="training only: a word seen once in training becomes <unk> with this probability"
    )
    crf: bool = setting(
        True,
        help="CRF output layer: Viterbi under the scheme's transition constraints, n-best, marginals "
        "(--no-crf: an independent softmax per token)",
    )
    lstm: LSTMSettings = section(LSTMSettings, fixed={"bidirectional": True}, hidden_size=200, dropout=0.5)
    train: TrainConfig = section(
        TrainConfig,
        notes={"monitor": "auto: f1 for chunk tags (BIO/BIOES), accuracy for plain labels (POS)"},
        epochs=30,
        batch_size=16,
        lr=2e-3,
        clip_grad=5.0,
        patience=5,
        monitor=AUTO,
        monitor_mode="max",
    )

    def metric_names(self) -> tuple[str, ...]:
        return (AUTO, "f1", "accuracy")

    def check(self) -> None:
        super().check()
        if self.char_kernel % 2 == 0:
            raise self.error("char_kernel", "must be odd", self.char_kernel)


@dataclass
class TagEvaluate(Settings):
    """Options of ``tag evaluate`` / ``Predictor.evaluate`` (how a tagged file is read)."""

    title = "evaluate"

    format: DataFormat | None = setting(None, help="conll or conllu (none: as in training)")
    tag_column: int | None = setting(None, help="CoNLL column of the tag (none: as in training)")
    tag: ConlluTag | None = setting(None, help="CoNLL-U tag column, upos or xpos (none: as in training)")
    max_len: int | None = setting(
        None, ge=1, help="longest sentence in tokens, longer ones are tagged in pieces (none: the model's --max-len)"
    )


@dataclass
class TagPredict(Settings):
    """Options of ``tag predict`` / ``Predictor.predict``."""

    title = "predict"

    format: PredictFormat = setting(
        "auto",
        help="input of --data: text (one sentence per line, whitespace-tokenised), conll (token in "
        "column 0, other columns kept) or conllu; auto: by suffix, .conllu -> conllu, .conll -> "
        "conll, anything else (and -) -> text",
    )
    nbest: int = setting(
        1, ge=1, help="also give the N best tag sequences with their probabilities p(y | x) (CRF models)"
    )
    confidence: bool = setting(
        False, help="add each predicted tag's marginal probability p(y_t | x) (forward-backward)"
    )
    batch_size: int = setting(128, ge=1, help="sentences per forward pass")
    max_len: int | None = setting(
        None,
        ge=1,
        help="longest sentence in tokens: a longer one is tagged in consecutive pieces of at most this many "
        "tokens, with one warning giving the count (none: the model's --max-len)",
    )


SPEC = TaskSpec(
    name="tag",
    summary="sequence labelling with a BiLSTM-CRF (NER, POS)",
    config=TagConfig,
    evaluate=TagEvaluate,
    predict=TagPredict,
    data_help="a CoNLL column file (token first, tag last) or CoNLL-U (--format conllu)",
    predict_help="sentences: text, one per line (empty lines give empty outputs), or CoNLL / CoNLL-U (--format)",
    renamed={"--word-dim": "--embed-size"},
    description="Label every token (named entities, POS tags, chunks) with a BiLSTM-CRF over word, character "
    "and casing features. The best epoch has the highest validation entity F1 (chunk tags such as "
    "B-PER) or token accuracy (plain labels such as POS tags): --monitor auto.",
)
