"""Text (and numeric-sequence) classification: ``lstmkit classify train|evaluate|predict``.

Pipeline::

    CSV/TSV/"label<TAB>text" ──► tokenizer (word | whitespace | char | bpe) ──► Vocab ids
        ──► length-bucketed padded batches (x (B, T), lengths (B,), y (B,))
        ──► SequenceClassifier (embedding → (Bi)LSTM with lengths → pooling → linear) ──► Trainer
        ──► model folder: config.json, model.safetensors, vocab.json, tokenizer.json, labels.json

``--input numeric`` reads each text field as a sequence of numbers (standardised with the training
mean/std, saved as ``scaler.json``) and feeds it through a linear "embedding" instead of a lookup table.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from lstmkit.data.batching import bucket_sampler, pad_sequences
from lstmkit.data.text import (
    BpeTokenizer,
    LabelledText,
    TextFormat,
    Tokenizer,
    TokenizerKind,
    load_embeddings,
    make_tokenizer,
    parse_numbers,
    read_labelled,
    read_unlabelled,
    tokenizer_from_json,
    tokenizer_to_json,
)
from lstmkit.data.vocab import Vocab
from lstmkit.errors import DataError, ModelFolderError
from lstmkit.io import read_folder, save_model
from lstmkit.tasks.classify_metrics import classification_metrics
from lstmkit.tasks.classify_model import ClassifierShape, ClassifyBatch, SequenceClassifier
from lstmkit.train import TrainConfig, Trainer

TASK = "classify"
Data = str | Path | Sequence[tuple[str, str]]


@dataclass
class ClassifyConfig:
    """How texts become examples (saved in config.json under ``"data"``).

    Attributes:
        input: ``"text"`` or ``"numeric"`` (each text field is a sequence of numbers).
        tokenizer: ``word`` (regex), ``whitespace``, ``char`` or ``bpe`` (trained on the training texts).
        lowercase: lowercase before tokenising.
        min_freq / max_vocab: vocabulary from the training data (words seen < min_freq times -> <unk>).
        bpe_vocab_size: BPE vocabulary size (``tokenizer="bpe"``).
        max_len: keep at most this many tokens of each text (None: all).
        embeddings: a GloVe/word2vec text file of pretrained word vectors (sets the embedding size).
        freeze_embeddings: keep pretrained vectors fixed.
        text_column / label_column / format: how to read the file (see ``lstmkit.data.text.read_labelled``).
        valid_fraction: held-out share of the training file when no validation file is given.
    """

    input: Literal["text", "numeric"] = "text"
    tokenizer: TokenizerKind = "word"
    lowercase: bool = False
    min_freq: int = 1
    max_vocab: int | None = None
    bpe_vocab_size: int = 8000
    max_len: int | None = None
    embeddings: str | None = None
    freeze_embeddings: bool = False
    text_column: str | None = None
    label_column: str | None = None
    format: TextFormat = "auto"
    valid_fraction: float = 0.1


@dataclass
class Encoder:
    """Text -> tensor of ids (or standardised values), the data side of a trained model."""

    config: ClassifyConfig
    labels: list[str]
    tokenizer: Tokenizer | None = None
    vocab: Vocab | None = None
    scaler: dict[str, float] = field(default_factory=lambda: {"mean": 0.0, "std": 1.0})

    def encode(self, text: str, where: str = "input") -> torch.Tensor:
        """(T,) long ids, or (T,) float standardised values for numeric input; never empty."""
        if self.config.input == "numeric":
            vals = parse_numbers(text, where)[: self.config.max_len]
            return (torch.tensor(vals, dtype=torch.float32) - self.scaler["mean"]) / self.scaler["std"]
        assert self.tokenizer is not None and self.vocab is not None
        toks = self.tokenizer.tokenize(text)[: self.config.max_len] or ["<unk>"]
        return torch.tensor(self.vocab.encode(toks), dtype=torch.long)

    def label_id(self, label: str, where: str) -> int:
        try:
            return self.labels.index(label)
        except ValueError:
            raise DataError(f"{where}: label {label!r} is not one the model knows ({', '.join(self.labels)})") from None

    def transforms(self) -> dict[str, Any]:
        t: dict[str, Any] = {"labels": {"labels": self.labels}}
        if self.config.input == "numeric":
            t["scaler"] = self.scaler
        else:
            assert self.tokenizer is not None and self.vocab is not None
            t["tokenizer"] = tokenizer_to_json(self.tokenizer)
            t["vocab"] = self.vocab.to_json()
        return t


# ============================================================================================ data
def _read(data: Data, cfg: ClassifyConfig) -> tuple[list[LabelledText], str]:
    if isinstance(data, (str, Path)):
        return read_labelled(data, cfg.text_column, cfg.label_column, cfg.format), str(data)
    rows = [LabelledText(str(t), str(y), i + 1) for i, (t, y) in enumerate(data)]
    if not rows:
        raise DataError("training data: no examples")
    return rows, "data"


def _sort_labels(labels: set[str]) -> list[str]:
    try:
        return sorted(labels, key=float)
    except ValueError:
        return sorted(labels)


def fit_encoder(rows: list[LabelledText], cfg: ClassifyConfig, source: str) -> Encoder:
    """Labels, tokenizer, vocabulary (or scaler) from the training rows."""
    labels = _sort_labels({r.label for r in rows})
    if len(labels) < 2:
        raise DataError(f"{source}: needs at least 2 different labels, found {labels}")
    if cfg.input == "numeric":
        vals = np.concatenate([parse_numbers(r.text, f"{source}: line {r.line}") for r in rows])
        std = float(vals.std()) or 1.0
        return Encoder(cfg, labels, scaler={"mean": float(vals.mean()), "std": std})
    if cfg.tokenizer == "bpe":
        bpe = BpeTokenizer.train((r.text for r in rows), cfg.bpe_vocab_size, cfg.lowercase)
        return Encoder(cfg, labels, bpe, bpe.vocab())
    tok = make_tokenizer(cfg.tokenizer, cfg.lowercase)
    vocab = Vocab.build((tok.tokenize(r.text) for r in rows), min_freq=cfg.min_freq, max_size=cfg.max_vocab)
    return Encoder(cfg, labels, tok, vocab)


def encode_rows(enc: Encoder, rows: list[LabelledText], source: str) -> list[tuple[torch.Tensor, int]]:
    return [
        (enc.encode(r.text, f"{source}: line {r.line}"), enc.label_id(r.label, f"{source}: line {r.line}"))
        for r in rows
    ]


def collate(examples: list[tuple[torch.Tensor, int]]) -> ClassifyBatch:
    """[(ids (T_i,), label)] -> ClassifyBatch(x (B, T), lengths (B,), y (B,))."""
    x, lengths = pad_sequences([e[0] for e in examples], padding_value=0)
    return ClassifyBatch(x, lengths, torch.tensor([e[1] for e in examples], dtype=torch.long))


def loss_fn(model: nn.Module, batch: ClassifyBatch) -> torch.Tensor:
    return nn.functional.cross_entropy(model(batch.x, batch.lengths), batch.y)


def _predict_batches(model: nn.Module, batches: Sequence[ClassifyBatch]) -> tuple[np.ndarray, np.ndarray]:
    """(y_true (N,), probabilities (N, C)) over already-collated batches."""
    ys, ps = [], []
    model.eval()
    with torch.no_grad():
        for b in batches:
            ps.append(model(b.x, b.lengths).float().softmax(-1).cpu())
            ys.append(b.y.cpu())
    return torch.cat(ys).numpy(), torch.cat(ps).numpy()


def _monitor_metrics(model: nn.Module, batches: list[ClassifyBatch]) -> dict[str, float]:
    y, p = _predict_batches(model, batches)
    m = classification_metrics(y, p.argmax(1), n_classes=p.shape[1])
    return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"]}


def _split(rows: list[LabelledText], fraction: float, seed: int) -> tuple[list[LabelledText], list[LabelledText]]:
    if not 0 < fraction < 1:
        return rows, []
    perm = torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed)).tolist()
    n_valid = max(1, int(round(len(rows) * fraction)))
    return [rows[i] for i in perm[n_valid:]], [rows[i] for i in perm[:n_valid]]


# ============================================================================================ train
def build_model(enc: Encoder, shape: ClassifierShape, seed: int) -> tuple[SequenceClassifier, ClassifierShape]:
    """A seeded network sized for the encoder (vocabulary, classes), with pretrained vectors if configured."""
    cfg = enc.config
    shape = replace(
        shape,
        input=cfg.input,
        num_classes=len(enc.labels),
        vocab_size=len(enc.vocab) if enc.vocab else 0,
        pad_id=(enc.vocab.pad_id or 0) if enc.vocab else 0,
        unk_id=enc.vocab.unk_id if enc.vocab else None,
    )
    emb = None
    if cfg.embeddings and cfg.input == "text":
        assert enc.vocab is not None
        emb = load_embeddings(cfg.embeddings, enc.vocab, seed=seed)
        shape = replace(shape, embed_size=emb.weight.shape[1])
    torch.manual_seed(seed)
    net = SequenceClassifier(shape)
    if emb is not None:
        net.embed.weight.data.copy_(emb.weight)
        net.embed.weight.requires_grad_(not cfg.freeze_embeddings)
    return net, shape


@dataclass
class ClassifyResult:
    predictor: ClassifyPredictor
    metrics: dict[str, Any]


def train(
    data: Data,
    valid: Data | None = None,
    out: str | Path | None = None,
    config: ClassifyConfig | None = None,
    model: ClassifierShape | None = None,
    train_config: TrainConfig | None = None,
    callbacks: Sequence[tuple[str, Callable[[Trainer], None]]] = (),
) -> ClassifyResult:
    """Train a classifier on ``data`` (a file or ``[(text, label), ...]``); save it to ``out`` if given.

    Validation: ``valid`` if given, else ``config.valid_fraction`` of ``data`` held out (seeded).
    Returns the predictor and the final validation metrics (also in ``out/metrics.json``).
    ``callbacks``: extra ``(event, fn)`` trainer hooks (e.g. to count steps or stop early).
    """
    cfg = config or ClassifyConfig()
    shape = model or ClassifierShape()
    tcfg = train_config or TrainConfig()
    rows, source = _read(data, cfg)
    if valid is not None:
        vrows, vsource = _read(valid, cfg)
    else:
        rows, vrows = _split(rows, cfg.valid_fraction, tcfg.seed)
        vsource = source
    enc = fit_encoder(rows, cfg, source)
    train_set = encode_rows(enc, rows, source)
    valid_set = sorted(encode_rows(enc, vrows, vsource), key=lambda e: len(e[0])) if vrows else None

    if valid_set is None and tcfg.monitor != "train_loss":
        tcfg = replace(tcfg, monitor="train_loss", mode="min")  # nothing to validate on
    net, shape = build_model(enc, shape, tcfg.seed)

    trainer = Trainer(
        net,
        tcfg,
        train_set,
        collate,
        loss_fn,
        valid_set=valid_set,
        evaluate=_monitor_metrics if valid_set else None,
        batch_sampler=bucket_sampler([len(e[0]) for e in train_set], tcfg.batch_size, shuffle=True),
        out_dir=out,
    )
    for event, fn in callbacks:
        trainer.add_callback(event, fn)
    trainer.fit()
    net = net.cpu().eval()
    metrics: dict[str, Any] = {}
    if valid_set:
        y, p = _predict_batches(net, [collate(valid_set[i : i + 256]) for i in range(0, len(valid_set), 256)])
        metrics = classification_metrics(y, p.argmax(1), labels=enc.labels)
    predictor = ClassifyPredictor(net, enc, shape, tcfg, sample=(vrows or rows)[0].text)
    if out is not None:
        predictor.save(out, metrics or None)
    return ClassifyResult(predictor, metrics)


# ============================================================================================ predictor
class ClassifyPredictor:
    """A trained classifier: ``predict(texts)``, ``predict_proba(texts)``, ``evaluate(rows)``, ``trace_gates``."""

    task = TASK

    def __init__(
        self,
        model: SequenceClassifier,
        encoder: Encoder,
        shape: ClassifierShape,
        train_config: TrainConfig | None = None,
        sample: str = "",
    ) -> None:
        self.model = model.cpu().eval()
        self.sample = sample  # a validation text kept for `lstmkit inspect`
        self.encoder = encoder
        self.shape = shape
        self.train_config = train_config
        self.labels = encoder.labels

    def save(self, folder: str | Path, metrics: dict[str, Any] | None = None) -> None:
        cfg = {
            "data": asdict(self.encoder.config),
            "model": asdict(self.shape),
            "train": self.train_config.to_dict() if self.train_config else None,
        }
        transforms = {**self.encoder.transforms(), "sample": {"text": self.sample}}
        save_model(folder, TASK, cfg, self.model, transforms=transforms, metrics=metrics)

    def _batches(self, seqs: list[torch.Tensor], batch_size: int = 256):
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            yield idx, collate([(seqs[i], 0) for i in idx])

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """(N, C) class probabilities, columns in the order of ``self.labels``."""
        seqs = [self.encoder.encode(t, f"input {i + 1}") for i, t in enumerate(texts)]
        probs = np.zeros((len(seqs), len(self.labels)), dtype=np.float64)
        with torch.no_grad():
            for idx, b in self._batches(seqs):
                probs[idx] = self.model(b.x, b.lengths).double().softmax(-1).numpy()
        return probs

    def predict(self, texts: Sequence[str]) -> list[dict[str, Any]]:
        """``[{"label": str, "probabilities": {label: p}}]`` per text."""
        probs = self.predict_proba(texts)
        return [
            {"label": self.labels[int(p.argmax())], "probabilities": {lab: float(v) for lab, v in zip(self.labels, p)}}
            for p in probs
        ]

    def predict_file(self, path: str | Path, text_column: str | None = None) -> list[dict[str, Any]]:
        """``[{"text", "label", "probabilities"}]`` for each text of ``path`` (lines, or a CSV/TSV column)."""
        texts = read_unlabelled(path, text_column or self.encoder.config.text_column)
        return [{"text": t, **r} for t, r in zip(texts, self.predict(texts))]

    def evaluate(
        self, rows: Sequence[LabelledText], source: str = "data", plot: str | Path | None = None
    ) -> dict[str, Any]:
        """Accuracy, macro-F1, per-class precision/recall/F1/support, confusion matrix (+ PNG if ``plot``)."""
        y = np.array([self.encoder.label_id(r.label, f"{source}: line {r.line}") for r in rows])
        pred = self.predict_proba([r.text for r in rows]).argmax(1)
        m = classification_metrics(y, pred, labels=self.labels)
        if plot is not None:
            from lstmkit.plots import plot_confusion_matrix

            plot_confusion_matrix(np.array(m["confusion_matrix"]), self.labels, plot)
        return m

    # ------------------------------------------------------------------ lstmkit inspect
    @property
    def num_directions(self) -> int:
        return 2 if self.shape.bidirectional else 1

    def inspect_sample(self, data: str | None = None, index: int = 0) -> str:
        """The ``index``-th text of ``data`` (predict-input format), or the sample saved at training time."""
        if data is None:
            if not self.sample:
                raise DataError("this model folder has no saved sample: pass --data")
            return self.sample
        texts = read_unlabelled(data, self.encoder.config.text_column)
        if not 0 <= index < len(texts):
            raise DataError(f"{data}: --index {index} out of range ({len(texts)} texts)")
        return texts[index]

    def step_labels(self, sample: str) -> list[str]:
        """One label per LSTM step: the tokens (or the numbers) of ``sample``."""
        if self.encoder.config.input == "numeric":
            return [f"{v:g}" for v in parse_numbers(sample, "sample")[: self.encoder.config.max_len]]
        assert self.encoder.tokenizer is not None
        return self.encoder.tokenizer.tokenize(sample)[: self.encoder.config.max_len] or ["<unk>"]

    def trace_gates(self, sample: str) -> list:
        """The LSTM's gate activations on one text (a list of ``lstmkit.nn.Gates``, one per layer×direction)."""
        x = self.encoder.encode(sample)[None]  # (1, T)
        with torch.no_grad():
            emb = self.model.embed_inputs(x)  # (1, T, E)
            _, _, gates = self.model.lstm(emb, lengths=torch.tensor([x.size(1)]), return_gates=True)
        return gates


def load_predictor(folder: str | Path) -> ClassifyPredictor:
    """Rebuild a predictor from a model folder (no unpickling); mismatches raise ModelFolderError."""
    mf = read_folder(folder)
    try:
        cfg = ClassifyConfig(**mf.config["data"])
        shape = ClassifierShape(**mf.config["model"])
        labels = list(mf.transforms["labels"]["labels"])
    except (KeyError, TypeError) as e:
        raise ModelFolderError(f"{folder}/config.json: not a classify model folder ({e})") from None
    if cfg.input == "numeric":
        enc = Encoder(cfg, labels, scaler=dict(mf.transforms.get("scaler", {"mean": 0.0, "std": 1.0})))
    else:
        if "vocab" not in mf.transforms or "tokenizer" not in mf.transforms:
            raise ModelFolderError(f"{folder}: vocab.json or tokenizer.json missing")
        vocab = Vocab.from_json(mf.transforms["vocab"])
        if len(vocab) != shape.vocab_size:
            raise ModelFolderError(
                f"{folder}/vocab.json: {len(vocab)} tokens, the model was built for {shape.vocab_size}"
            )
        enc = Encoder(cfg, labels, tokenizer_from_json(mf.transforms["tokenizer"]), vocab)
    if len(labels) != shape.num_classes:
        raise ModelFolderError(f"{folder}/labels.json: {len(labels)} labels, the model has {shape.num_classes} classes")
    net = mf.load_into(SequenceClassifier(shape))
    tcfg = TrainConfig.from_dict(mf.config["train"], strict=False) if mf.config.get("train") else None
    sample = str(mf.transforms.get("sample", {}).get("text", ""))
    return ClassifyPredictor(net, enc, shape, tcfg, sample=sample)


# ============================================================================================ CLI helpers
def evaluate(folder: str | Path, data: str | Path, plot: str | Path | None = None) -> dict[str, Any]:
    """Load ``folder`` and evaluate it on the labelled file ``data`` (read with the model's own options)."""
    pred = load_predictor(folder)
    cfg = pred.encoder.config
    rows = read_labelled(data, cfg.text_column, cfg.label_column, cfg.format)
    return pred.evaluate(rows, str(data), plot=plot)


def format_predictions(rows: list[dict[str, Any]], labels: list[str], fmt: Literal["csv", "jsonl"]) -> str:
    """CSV (text, label, p_<label>...) or JSON lines."""
    if fmt == "jsonl":
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["text", "label"] + [f"p_{lab}" for lab in labels])
    for r in rows:
        w.writerow([r["text"], r["label"]] + [f"{r['probabilities'][lab]:.6f}" for lab in labels])
    return buf.getvalue()


__all__ = [
    "ClassifyConfig",
    "ClassifierShape",
    "ClassifyPredictor",
    "ClassifyResult",
    "train",
    "evaluate",
    "load_predictor",
    "format_predictions",
]
