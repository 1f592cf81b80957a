"""Sequence labelling with a BiLSTM-CRF: ``lstmkit tag train|evaluate|predict``.

Pipeline::

    CoNLL / CoNLL-U file ──► Sentence(tokens, tags) ──► scheme detected (IOB1 / IOB2 / IOBES / none)
        ──► tags converted to the model's scheme (IOBES by default) ──► TagEncoder (words, chars, tags)
        ──► length-bucketed TagBatch ──► BiLSTMTagger (word + char + casing → BiLSTM → CRF) ──► Trainer
        ──► model folder: config.json, model.safetensors, words.json, chars.json, tags.json, metrics.json

Predictions come back in the input's scheme. Metrics: for chunk tags, entity-level precision, recall
and F1 per type and micro-averaged with seqeval's conlleval-compatible rules (plus token accuracy);
for plain labels (POS), token accuracy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal, NamedTuple

import torch
from seqeval.metrics import classification_report

from lstmkit.data.batching import bucket_sampler
from lstmkit.data.conll import Sentence, check_scheme, convert, detect_scheme, read_sentences
from lstmkit.errors import DataError, LstmkitError, ModelFolderError
from lstmkit.io import read_folder, save_model
from lstmkit.tasks.tag_data import TagBatch, TagEncoder, TagExample, collate
from lstmkit.tasks.tag_model import BiLSTMTagger, CharEncoderKind, TaggerShape
from lstmkit.train import TrainConfig, Trainer

TASK = "tag"
Data = str | Path | Sequence[Sentence] | Sequence[tuple[Sequence[str], Sequence[str]]]


@dataclass
class TagConfig:
    """Data and model options of ``lstmkit tag train`` (saved in config.json under ``"data"``).

    Attributes:
        format: ``conll`` (columns) or ``conllu``.
        tag_column: CoNLL column of the tag (default -1: the last). conllu_tag: ``upos`` or ``xpos``.
        scheme: the data's tagging scheme, ``auto`` to detect it (saved resolved).
        model_scheme: the scheme the model is trained in (``IOBES`` or ``IOB2``) for chunk tags.
        lowercase / zeros: word lookup ignores case / maps digits to 0 (characters keep both).
        min_freq: words seen fewer times in training map to <unk>.
        max_word_len: characters per word given to the character encoder.
        embeddings: a GloVe/word2vec text file of pretrained word vectors (sets word_dim).
        freeze_embeddings: keep the pretrained vectors fixed.
        valid_fraction: share of the training data held out when no validation data is given.
        word_dim, char_encoder, char_dim, char_hidden, char_kernel, casing, hidden_size, num_layers,
        dropout, unk_replace, crf: the network (see :class:`lstmkit.tasks.tag_model.TaggerShape`).
    """

    format: Literal["conll", "conllu"] = "conll"
    tag_column: int = -1
    conllu_tag: Literal["upos", "xpos"] = "upos"
    scheme: Literal["auto", "IOB1", "IOB2", "IOBES", "none"] = "auto"
    model_scheme: Literal["IOBES", "IOB2"] = "IOBES"
    lowercase: bool = True
    zeros: bool = True
    min_freq: int = 1
    max_word_len: int = 40
    embeddings: str | None = None
    freeze_embeddings: bool = False
    valid_fraction: float = 0.1
    word_dim: int = 100
    char_encoder: CharEncoderKind = "cnn"
    char_dim: int = 30
    char_hidden: int = 30
    char_kernel: int = 3
    casing: bool = True
    hidden_size: int = 200
    num_layers: int = 1
    dropout: float = 0.5
    unk_replace: float = 0.5
    crf: bool = True

    def validate(self) -> None:
        """Raise :class:`LstmkitError` naming the first bad option."""
        checks = [
            (self.format in ("conll", "conllu"), "format", "must be conll or conllu"),
            (
                self.scheme in ("auto", "IOB1", "IOB2", "IOBES", "none"),
                "scheme",
                "must be auto, IOB1, IOB2, IOBES or none",
            ),
            (self.model_scheme in ("IOBES", "IOB2"), "model_scheme", "must be IOBES or IOB2"),
            (self.char_encoder in ("lstm", "cnn", "none"), "char_encoder", "must be lstm, cnn or none"),
            (self.min_freq >= 1, "min_freq", "must be >= 1"),
            (self.max_word_len >= 1, "max_word_len", "must be >= 1"),
            (0 <= self.valid_fraction < 1, "valid_fraction", "must be in [0, 1)"),
            (
                min(self.word_dim, self.char_dim, self.char_hidden, self.hidden_size, self.num_layers) >= 1,
                "word_dim/char_dim/char_hidden/hidden_size/num_layers",
                "must be >= 1",
            ),
            (self.char_kernel >= 1 and self.char_kernel % 2 == 1, "char_kernel", "must be odd and >= 1"),
            (0 <= self.dropout < 1 and 0 <= self.unk_replace <= 1, "dropout/unk_replace", "must be in [0, 1)"),
        ]
        for ok, name, what in checks:
            if not ok:
                raise LstmkitError(f"tag config: {name} {what} (got {getattr(self, name.split('/')[0], None)!r})")


def default_train_config(**overrides: Any) -> TrainConfig:
    """The tagger's training defaults (also the CLI's): Adam(W) lr 2e-3, batches of 16 sentences,
    gradient norm clipped at 5, up to 30 epochs with early stopping on validation F1 / accuracy."""
    values: dict[str, Any] = dict(
        epochs=30, batch_size=16, lr=2e-3, clip_grad=5.0, patience=5, monitor="auto", mode="max"
    )
    values.update(overrides)
    return TrainConfig(**values)


# ============================================================================================ data
def read_data(data: Data, cfg: TagConfig, require_tags: bool = True) -> tuple[list[Sentence], str]:
    """Sentences from a file (``cfg.format``) or from ``[Sentence]`` / ``[(tokens, tags)]``."""
    if isinstance(data, (str, Path)):
        return read_sentences(data, cfg.format, cfg.tag_column, cfg.conllu_tag, require_tags), str(data)
    out = []
    for i, item in enumerate(data):
        if isinstance(item, Sentence):
            out.append(item)
            continue
        toks, tags = [str(t) for t in item[0]], [str(t) for t in item[1]]
        if len(toks) != len(tags) or not toks:
            raise DataError(f"sentence {i + 1}: {len(toks)} tokens but {len(tags)} tags")
        out.append(Sentence(toks, tags, [i + 1] * len(toks)))
    if not out:
        raise DataError("data: no sentences")
    return out, "data"


def _model_tags(sentences: Sequence[Sentence], scheme: str, model_scheme: str) -> list[list[str]]:
    """Each sentence's tags in the model's scheme (unchanged for plain labels)."""
    return [convert(s.tags or [], model_scheme) if scheme != "none" else list(s.tags or []) for s in sentences]


def _tag_list(tag_lists: Sequence[Sequence[str]]) -> list[str]:
    """Deterministic tag order: O first, then by entity type and prefix (plain labels: sorted)."""
    tags = {t for ts in tag_lists for t in ts}
    return sorted(tags, key=lambda t: (t != "O", t[2:] if t[1:2] == "-" else t, t))


def _split(sentences: list[Sentence], fraction: float, seed: int) -> tuple[list[Sentence], list[Sentence]]:
    if fraction <= 0 or len(sentences) < 2:
        return sentences, []
    perm = torch.randperm(len(sentences), generator=torch.Generator().manual_seed(seed)).tolist()
    n_valid = max(1, int(round(len(sentences) * fraction)))
    return [sentences[i] for i in perm[n_valid:]], [sentences[i] for i in perm[:n_valid]]


# ============================================================================================ metrics
def tag_metrics(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], scheme: str) -> dict[str, Any]:
    """Token accuracy; for chunk schemes also entity precision/recall/F1 (micro and per type, seqeval's
    default conlleval-compatible mode) with ``f1`` the micro F1."""
    n = sum(len(g) for g in gold)
    correct = sum(a == b for g, p in zip(gold, pred) for a, b in zip(g, p))
    out: dict[str, Any] = {"accuracy": correct / max(1, n), "sentences": len(gold), "tokens": n}
    if scheme == "none":
        return out
    report = classification_report(
        [list(g) for g in gold], [list(p) for p in pred], output_dict=True, zero_division=0, digits=6
    )
    micro = report.get("micro avg", {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 0})
    out.update(
        precision=float(micro["precision"]),
        recall=float(micro["recall"]),
        f1=float(micro["f1-score"]),
        entities=int(micro["support"]),
    )
    out["per_type"] = {
        k: {
            "precision": float(v["precision"]),
            "recall": float(v["recall"]),
            "f1": float(v["f1-score"]),
            "support": int(v["support"]),
        }
        for k, v in sorted(report.items())
        if not k.endswith(" avg")
    }
    return out


def _monitor(tags: list[str], scheme: str):
    """evaluate() for the trainer: ``f1`` (chunk tags) and ``accuracy`` on the validation batches."""

    def evaluate(model: BiLSTMTagger, batches: list[TagBatch]) -> dict[str, float]:
        gold, pred = [], []
        for b in batches:
            paths = model.decode(b).cpu()
            for row_g, row_p, n in zip(b.tags.cpu().tolist(), paths.tolist(), b.lengths.tolist()):
                gold.append([tags[i] for i in row_g[:n]])
                pred.append([tags[i] for i in row_p[:n]])
        m = tag_metrics(gold, pred, scheme)
        return {k: m[k] for k in ("f1", "accuracy") if k in m}

    return evaluate


# ============================================================================================ train
class TagResult(NamedTuple):
    predictor: TagPredictor
    metrics: dict[str, Any]


def _resolve_scheme(sentences: list[Sentence], cfg: TagConfig, source: str) -> str:
    if cfg.scheme == "auto":
        return detect_scheme(sentences, source)
    check_scheme(sentences, cfg.scheme, source)
    return cfg.scheme


def _build_model(cfg: TagConfig, enc: TagEncoder, model_scheme: str, seed: int) -> BiLSTMTagger:
    shape = TaggerShape(
        vocab_size=len(enc.words),
        char_vocab_size=len(enc.chars),
        tags=list(enc.tags),
        scheme=model_scheme,
        word_dim=cfg.word_dim,
        char_encoder=cfg.char_encoder,
        char_dim=cfg.char_dim,
        char_hidden=cfg.char_hidden,
        char_kernel=cfg.char_kernel,
        casing=cfg.casing,
        hidden_size=cfg.hidden_size,
        num_layers=cfg.num_layers,
        dropout=cfg.dropout,
        unk_replace=cfg.unk_replace,
        crf=cfg.crf,
    )
    emb = None
    if cfg.embeddings:
        from lstmkit.data.text import load_embeddings

        emb = load_embeddings(cfg.embeddings, enc.words, seed=seed)
        shape = replace(shape, word_dim=int(emb.weight.shape[1]))
    torch.manual_seed(seed)
    net = BiLSTMTagger(shape)
    if emb is not None:
        net.words.weight.data.copy_(emb.weight)
        net.words.weight.requires_grad_(not cfg.freeze_embeddings)
    return net


def train(
    data: Data,
    valid: Data | None = None,
    out: str | Path | None = None,
    config: TagConfig | None = None,
    train_config: TrainConfig | None = None,
    callbacks: Sequence[tuple[str, Callable[[Trainer], None]]] = (),
) -> TagResult:
    """Train a tagger on ``data`` (a file or sentences); validate on ``valid`` (else a held-out share).

    With ``train_config.monitor == "auto"`` the best epoch is the one with the highest validation F1
    (chunk tags) or accuracy (plain labels). ``callbacks``: ``(event, fn)`` pairs handed to
    :meth:`Trainer.add_callback`. Saves the model folder to ``out`` if given.
    """
    cfg = config or TagConfig()
    cfg.validate()
    tcfg = train_config or default_train_config()
    sents, source = read_data(data, cfg)
    scheme = _resolve_scheme(sents, cfg, source)
    if valid is not None:
        vsents, vsource = read_data(valid, cfg)
        check_scheme(vsents, scheme, vsource)  # type: ignore[arg-type]
    else:
        sents, vsents = _split(sents, cfg.valid_fraction, tcfg.seed)
        vsource = source
    model_scheme = cfg.model_scheme if scheme != "none" else "none"
    train_tags, valid_tags = _model_tags(sents, scheme, model_scheme), _model_tags(vsents, scheme, model_scheme)
    enc = TagEncoder.build(
        [s.tokens for s in sents],
        _tag_list(train_tags + valid_tags),
        cfg.lowercase,
        cfg.zeros,
        cfg.min_freq,
        cfg.max_word_len,
    )
    train_set = [enc.encode(s.tokens, t, f"{source}:{s.lines[0]}") for s, t in zip(sents, train_tags)]
    valid_set = [enc.encode(s.tokens, t, f"{vsource}:{s.lines[0]}") for s, t in zip(vsents, valid_tags)]
    valid_set.sort(key=lambda e: len(e.words))  # less padding in validation batches
    net = _build_model(cfg, enc, model_scheme, tcfg.seed)
    if tcfg.monitor == "auto" and valid_set:
        tcfg = replace(tcfg, monitor="f1" if scheme != "none" else "accuracy", mode="max")
    elif tcfg.monitor == "auto":
        tcfg = replace(tcfg, monitor="valid_loss", mode="min")  # the trainer then watches train_loss
    trainer = Trainer(
        net,
        tcfg,
        train_set,
        collate,
        lambda m, b: m.loss(b),
        valid_set=valid_set or None,
        evaluate=_monitor(enc.tags, scheme) if valid_set else None,
        batch_sampler=bucket_sampler([len(e.words) for e in train_set], tcfg.batch_size, shuffle=True),
        out_dir=out,
    )
    for event, fn in callbacks:
        trainer.add_callback(event, fn)
    fit = trainer.fit()
    saved_cfg = replace(cfg, scheme=scheme)  # type: ignore[arg-type]
    predictor = TagPredictor(net, enc, saved_cfg, tcfg)
    metrics: dict[str, Any] = predictor.evaluate(vsents) if vsents else {}
    metrics["best_epoch"], metrics["epochs_run"], metrics["stopped"] = fit.best_epoch, fit.epochs_run, fit.stopped
    if out is not None:
        predictor.save(out, metrics)
    return TagResult(predictor, metrics)


# ============================================================================================ predictor
class TagPrediction(NamedTuple):
    """Tags of one sentence in the input's scheme; ``confidence`` (marginal probability of each
    predicted model tag) when asked; ``nbest``: [(tags, path probability)] when asked."""

    tokens: list[str]
    tags: list[str]
    confidence: list[float] | None = None
    nbest: list[tuple[list[str], float]] | None = None


class TagPredictor:
    """A trained tagger: ``predict(sentences)``, ``evaluate(sentences)``, ``trace_gates(sample)``."""

    task = TASK
    num_directions = 2

    def __init__(
        self, model: BiLSTMTagger, encoder: TagEncoder, config: TagConfig, train_config: TrainConfig | None = None
    ) -> None:
        self.model = model.cpu().eval()
        self.encoder = encoder
        self.config = config
        self.train_config = train_config
        self.scheme = config.scheme  # the data's scheme (resolved)
        self.tags = list(encoder.tags)  # the model's tags

    def save(self, folder: str | Path, metrics: dict[str, Any] | None = None) -> None:
        cfg = {
            "data": asdict(self.config),
            "model": asdict(self.model.shape),
            "train": self.train_config.to_dict() if self.train_config else None,
        }
        save_model(folder, TASK, cfg, self.model, transforms=self.encoder.transforms(), metrics=metrics)

    def _to_output(self, model_tags: list[str]) -> list[str]:
        return convert(model_tags, self.scheme) if self.scheme != "none" else model_tags  # type: ignore[arg-type]

    @torch.no_grad()
    def predict(
        self, sentences: Sequence[Sequence[str]], nbest: int = 1, confidence: bool = False, batch_size: int = 128
    ) -> list[TagPrediction]:
        """Tag token lists; ``nbest > 1`` (CRF models) adds the best paths with their probabilities."""
        if nbest < 1:
            raise LstmkitError(f"--nbest must be >= 1 (got {nbest})")
        if nbest > 1 and self.model.crf is None:
            raise LstmkitError("--nbest needs a CRF model (this one was trained with --no-crf)")
        examples = [self.encoder.encode(list(s), None, f"sentence {i + 1}") for i, s in enumerate(sentences)]
        order = sorted(range(len(examples)), key=lambda i: len(examples[i].words))
        results: list[TagPrediction | None] = [None] * len(examples)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            for i, res in zip(idx, self._predict_batch([examples[i] for i in idx], nbest, confidence)):
                results[i] = TagPrediction(list(sentences[i]), *res)
        return results  # type: ignore[return-value]

    def _predict_batch(self, examples: list[TagExample], nbest: int, confidence: bool) -> list[tuple]:
        batch = collate(examples)
        em = self.model.emissions(batch).float()  # (B, T, K)
        crf = self.model.crf
        paths = crf.decode(em, batch.mask)[0] if crf is not None else em.argmax(-1)  # (B, T)
        probs = self.model.marginals(em, batch.mask) if confidence else None  # (B, T, K)
        best = crf.nbest(em, batch.mask, nbest) if nbest > 1 and crf is not None else None
        log_z = crf.log_partition(em, batch.mask) if best is not None else None  # (B,)
        out = []
        for b, n in enumerate(batch.lengths.tolist()):
            ids = paths[b, :n].tolist()
            conf = [float(probs[b, t, k]) for t, k in enumerate(ids)] if probs is not None else None
            alts = None
            if best is not None:
                alts = [
                    (
                        self._to_output([self.tags[k] for k in best.paths[b, r, :n].tolist()]),
                        math.exp(float(best.scores[b, r] - log_z[b])),
                    )
                    for r in range(nbest)
                    if bool(best.valid[b, r])
                ]
            out.append((self._to_output([self.tags[k] for k in ids]), conf, alts))
        return out

    def evaluate(self, sentences: Sequence[Sentence]) -> dict[str, Any]:
        """Metrics of the predictions against the sentences' tags (see :func:`tag_metrics`)."""
        if not sentences:
            raise DataError("evaluate: no sentences")
        pred = self.predict([s.tokens for s in sentences])
        return tag_metrics([list(s.tags or []) for s in sentences], [p.tags for p in pred], self.scheme)

    # -- lstmkit inspect ----------------------------------------------------------------------
    def inspect_sample(self, data: str | None = None, index: int = 0) -> list[str]:
        """Tokens of sentence ``index`` of ``data`` (raw text, one sentence per line), or a built-in one."""
        if data is None:
            return "EU rejects German call to boycott British lamb .".split()
        sents = read_sentences(data, "text", require_tags=False)
        if not 0 <= index < len(sents):
            raise LstmkitError(f"--index {index}: {data} has {len(sents)} sentences")
        return sents[index].tokens

    def step_labels(self, sample: Sequence[str] | str) -> list[str]:
        return sample.split() if isinstance(sample, str) else list(sample)

    @torch.no_grad()
    def trace_gates(self, sample: Sequence[str] | str) -> list:
        """Gate activations of the word BiLSTM on one sentence (list of ``lstmkit.nn.Gates``)."""
        tokens = self.step_labels(sample)
        batch = collate([self.encoder.encode(tokens, None, "sample")])
        x = self.model.features(batch)  # (1, T, F)
        _, gates = self.model.lstm(x, batch.lengths, return_gates=True)
        return gates


def load_predictor(folder: str | Path) -> TagPredictor:
    """Rebuild a predictor from a model folder (no unpickling); mismatches raise ModelFolderError."""
    mf = read_folder(folder)
    try:
        cfg = TagConfig(**mf.config["data"])
        shape = TaggerShape(**mf.config["model"])
    except (KeyError, TypeError) as e:
        raise ModelFolderError(f"{folder}/config.json: not a tag model folder ({e})") from None
    enc = TagEncoder.from_transforms(mf.transforms, cfg.lowercase, cfg.zeros, cfg.max_word_len)
    if len(enc.words) != shape.vocab_size or enc.tags != shape.tags:
        raise ModelFolderError(f"{folder}: words.json / tags.json do not match config.json")
    net = BiLSTMTagger(shape)
    try:
        net.load_state_dict(mf.state_dict)
    except RuntimeError as e:
        raise ModelFolderError(
            f"{folder}/model.safetensors: does not match config.json ({str(e).splitlines()[0]})"
        ) from None
    tcfg = TrainConfig.from_dict(mf.config["train"], strict=False) if mf.config.get("train") else None
    return TagPredictor(net, enc, cfg, tcfg)


# ============================================================================================ files
def evaluate(
    folder: str | Path,
    data: str | Path,
    fmt: str | None = None,
    tag_column: int | None = None,
    conllu_tag: str | None = None,
) -> dict[str, Any]:
    """Load a model and evaluate it on a tagged file (format options default to the training ones)."""
    predictor = load_predictor(folder)
    cfg = _read_options(predictor.config, fmt, tag_column, conllu_tag)
    sents, source = read_data(data, cfg)
    if predictor.scheme != "none":
        check_scheme(sents, predictor.scheme, source)  # type: ignore[arg-type]
    return predictor.evaluate(sents)


def _read_options(cfg: TagConfig, fmt: str | None, tag_column: int | None, conllu_tag: str | None) -> TagConfig:
    return replace(
        cfg,
        format=fmt or cfg.format,  # type: ignore[arg-type]
        tag_column=cfg.tag_column if tag_column is None else tag_column,
        conllu_tag=conllu_tag or cfg.conllu_tag,
    )  # type: ignore[arg-type]


def predict_file(
    folder: str | Path,
    data: str | Path,
    fmt: Literal["text", "conll", "conllu"] = "text",
    nbest: int = 1,
    confidence: bool = False,
) -> str:
    """Tag a raw-text (one sentence per line) or column file; returns CoNLL columns (see
    :func:`format_conll`)."""
    predictor = load_predictor(folder)
    sents = read_sentences(data, fmt, tag_column=None, conllu_tag=predictor.config.conllu_tag, require_tags=False)
    preds = predictor.predict([s.tokens for s in sents], nbest=nbest, confidence=confidence)
    return format_conll(sents, preds, sep="\t" if fmt == "conllu" else " ")


def format_conll(sents: Sequence[Sentence], preds: Sequence[TagPrediction], sep: str = " ") -> str:
    """Each token line's input columns plus the predicted tag (and its probability with confidence;
    with n-best, one tag column per path and a ``# nbest probabilities:`` line before the sentence);
    a blank line after each sentence."""
    lines: list[str] = []
    for s, p in zip(sents, preds):
        columns = s.columns or [[t] for t in s.tokens]
        paths = [tags for tags, _ in p.nbest] if p.nbest else [p.tags]
        if p.nbest:
            lines.append("# nbest probabilities: " + " ".join(f"{prob:.4f}" for _, prob in p.nbest))
        for t, cols in enumerate(columns):
            row = list(cols) + [tags[t] for tags in paths]
            if p.confidence is not None:
                row.append(f"{p.confidence[t]:.4f}")
            lines.append(sep.join(row))
        lines.append("")
    return "\n".join(lines) + ("\n" if lines else "")
