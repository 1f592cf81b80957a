"""Speech recognition: MFCC / log-mel features, a (Bi)LSTM, and a softmax or CTC head.

Python API (the CLI ``lstmkit speech ...`` calls exactly these)::

    from lstmkit.tasks.speech import SpeechConfig, train, load_predictor
    from lstmkit.train import TrainConfig
    metrics = train("fsdd/train.csv", SpeechConfig(mode="classify"), TrainConfig(epochs=20), "runs/fsdd")
    p = load_predictor("runs/fsdd")
    p.predict_file("7_jackson_0.wav")          # "7"
    p.evaluate("fsdd/test.csv")                # {"accuracy": ..., "rtf": ...}

Modes: ``classify`` (one label per clip: cross-entropy on pooled LSTM states) and ``ctc`` (the
transcript as characters: CTC loss, ``torch.nn.functional.ctc_loss``, blank id 0; greedy or prefix
beam decoding from :mod:`lstmkit.tasks.speech_decode`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from lstmkit.data.audio import (
    FeatureConfig,
    FeatureExtractor,
    FeatureNorm,
    NormMode,
    OnError,
    SpecAugmentConfig,
    featurize_files,
    read_manifest,
    warn,
)
from lstmkit.data.vocab import Vocab
from lstmkit.errors import DataError, LstmkitError, ModelFolderError
from lstmkit.tasks.speech_model import Mode, Pooling, SpeechNet, SpeechNetConfig

TASK = "speech"
BLANK = "<blank>"
Decoder = Literal["greedy", "beam"]


@dataclass
class SpeechConfig:
    """Task settings of a speech model (saved in config.json under ``speech``).

    Attributes:
        mode: ``classify`` (one label per clip) or ``ctc`` (character transcription).
        features: feature extraction (kind mfcc|fbank, sample rate, n_mfcc, n_mels, deltas).
        norm: ``global`` (train-set mean/std, stored as norm.json), ``utterance`` or ``none``.
        hidden_size, num_layers, bidirectional, dropout: the LSTM stack.
        subsample: stack this many frames into one LSTM step (CTC needs T/k >= transcript length).
        pooling: classify only: ``mean``, ``max``, ``meanmax`` or ``last``.
        specaugment: time/frequency masking of training batches (settings in ``augment``).
        decoder, beam_width: CTC decoding (``greedy`` or prefix ``beam`` search).
        valid_fraction: share of the training manifest held out for validation when no --valid.
        on_error: ``fail`` (exit 2 on the first unreadable WAV) or ``skip`` (warn and go on).
    """

    mode: Mode = "classify"
    features: FeatureConfig = field(default_factory=FeatureConfig)
    norm: NormMode = "global"
    hidden_size: int = 128
    num_layers: int = 2
    bidirectional: bool = True
    dropout: float = 0.1
    subsample: int = 2
    pooling: Pooling = "meanmax"
    specaugment: bool = False
    augment: SpecAugmentConfig = field(default_factory=SpecAugmentConfig)
    decoder: Decoder = "greedy"
    beam_width: int = 8
    valid_fraction: float = 0.1
    on_error: OnError = "fail"

    def __post_init__(self) -> None:
        if isinstance(self.features, dict):
            self.features = FeatureConfig(**self.features)
        if isinstance(self.augment, dict):
            self.augment = SpecAugmentConfig(**self.augment)
        checks = [
            (self.mode in ("classify", "ctc"), "mode", "must be classify or ctc"),
            (self.norm in ("global", "utterance", "none"), "norm", "must be global, utterance or none"),
            (self.decoder in ("greedy", "beam"), "decoder", "must be greedy or beam"),
            (self.pooling in ("mean", "max", "meanmax", "last"), "pooling", "must be mean, max, meanmax or last"),
            (self.on_error in ("skip", "fail"), "on_error", "must be skip or fail"),
            (self.hidden_size >= 1 and self.num_layers >= 1, "hidden_size/num_layers", "must be >= 1"),
            (self.subsample >= 1, "subsample", "must be >= 1"),
            (0 <= self.dropout < 1, "dropout", "must be in [0, 1)"),
            (0 <= self.valid_fraction < 1, "valid_fraction", "must be in [0, 1)"),
            (self.beam_width >= 1, "beam_width", "must be >= 1"),
            (self.features.sample_rate >= 1000, "sample_rate", "must be >= 1000"),
        ]
        for ok, name, what in checks:
            if not ok:
                raise LstmkitError(f"speech config: {name} {what} (got {getattr(self, name, '?')!r})")


class SpeechBatch(NamedTuple):
    """A padded batch. feats (B, T, F); lengths (B,); targets (B,) class ids (classify) or
    (B, S) padded label ids (ctc); target_lengths (B,) (ctc; ones for classify)."""

    feats: torch.Tensor
    lengths: torch.Tensor
    targets: torch.Tensor
    target_lengths: torch.Tensor


class Example(NamedTuple):
    feats: torch.Tensor  # (T, F) normalised
    target: list[int]  # [class id] or label ids


def collate(examples: Sequence[Example]) -> SpeechBatch:
    """list of examples → :class:`SpeechBatch` (zero padding)."""
    from lstmkit.data.batching import pad_sequences

    feats, lengths = pad_sequences([e.feats for e in examples])  # (B, T, F), (B,)
    tgt = [torch.tensor(e.target, dtype=torch.int64) for e in examples]
    targets, target_lengths = pad_sequences(tgt)  # (B, S), (B,)
    return SpeechBatch(feats, lengths, targets, target_lengths)


def normalize_text(text: str) -> str:
    """Transcripts compare with single spaces and no outer whitespace."""
    return " ".join(text.split())


def make_loss(mode: Mode):
    """(model, batch) → mean loss: cross-entropy (classify) or CTC (per-utterance, mean)."""

    def loss_fn(model: torch.nn.Module, batch: SpeechBatch) -> torch.Tensor:
        out, out_lengths = model(batch.feats, batch.lengths)
        if mode == "classify":
            return F.cross_entropy(out.float(), batch.targets[:, 0])
        log_probs = out.float().transpose(0, 1)  # (T', B, V)
        return F.ctc_loss(
            log_probs, batch.targets, out_lengths, batch.target_lengths, blank=0, reduction="mean", zero_infinity=True
        )

    return loss_fn


# ------------------------------------------------------------------------------------ data prep
class Prepared(NamedTuple):
    feats: list[np.ndarray]  # raw (T, F) per kept row
    texts: list[str]
    sources: list[str]  # "train.csv line 7"


def load_split(manifest: str | Path, extractor: FeatureExtractor, on_error: OnError) -> Prepared:
    """Read a manifest and featurise its audio (features are computed once and kept in memory)."""
    entries = read_manifest(manifest)
    feats, kept, _ = featurize_files(
        [e.path for e in entries], extractor, on_error, sources=[e.source for e in entries]
    )
    return Prepared(feats, [normalize_text(entries[i].text) for i in kept], [entries[i].source for i in kept])


def build_labels(mode: Mode, texts: Sequence[str]) -> Vocab:
    """classify: the sorted label set; ctc: the sorted character set after the blank (id 0)."""
    if mode == "classify":
        return Vocab(sorted(set(texts)), specials=())
    return Vocab(sorted({c for t in texts for c in t}), specials=(BLANK,))


def encode_targets(
    mode: Mode, labels: Vocab, prep: Prepared, frames: Sequence[int], subsample: int, on_error: OnError
) -> tuple[list[list[int]], list[int]]:
    """Targets per row, and the kept row indices; rows the model cannot learn fail or are skipped.

    classify: a label unseen in training; ctc: a character outside the alphabet, or a clip too
    short for its transcript (CTC needs ⌈T/k⌉ >= length + repeated neighbours).
    """
    targets, kept = [], []
    for i, (text, src) in enumerate(zip(prep.texts, prep.sources)):
        problem = None
        if mode == "classify":
            problem = None if text in labels else f"label '{text}' does not occur in the training data"
            ids = [labels.index(text)] if problem is None else []
        else:
            bad = sorted({c for c in text if c not in labels})
            problem = f"characters {bad} are not in the alphabet" if bad else None
            ids = labels.encode(text) if problem is None else []
            need = len(ids) + sum(a == b for a, b in zip(ids, ids[1:]))
            steps = -(-frames[i] // subsample)
            if problem is None and steps < max(1, need):
                problem = f"{steps} frames after --subsample {subsample} cannot carry {need} CTC labels"
        if problem:
            if on_error == "fail":
                raise DataError(f"{src}: {problem}")
            warn(f"{src}: {problem} (skipped)")
            continue
        targets.append(ids)
        kept.append(i)
    return targets, kept


def split_valid(n: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Deterministic (seeded) train/valid split of n rows; valid gets round(n * fraction) rows."""
    n_valid = int(round(n * fraction)) if n > 1 else 0
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 7919)).tolist()
    return sorted(perm[n_valid:]), sorted(perm[:n_valid])


def make_examples(
    prep: Prepared, rows: Sequence[int], targets_by_row: dict[int, list[int]], norm: FeatureNorm
) -> list[Example]:
    return [Example(torch.from_numpy(norm(prep.feats[i])), targets_by_row[i]) for i in rows]


# ------------------------------------------------------------------------------------ training
def train(data: str | Path, cfg: SpeechConfig, train_cfg, out: str | Path, *, valid: str | Path | None = None) -> dict:
    """Train on manifest ``data`` and write the model folder ``out``; returns the saved metrics.

    Without ``valid`` a seeded ``cfg.valid_fraction`` of ``data`` is held out for validation.
    """
    return fit(data, cfg, train_cfg, out, valid=valid)[1]


class Sets(NamedTuple):
    """What :func:`prepare_sets` returns."""

    train: list[Example]
    valid: list[Example]
    labels: Vocab
    norm: FeatureNorm
    input_size: int


def prepare_sets(data: str | Path, valid: str | Path | None, cfg: SpeechConfig, seed: int) -> Sets:
    """Featurise ``data`` (and ``valid``), build the label set / alphabet, fit the normalisation
    on the training rows, and encode targets. Without ``valid`` a seeded split of ``data``."""
    extractor = FeatureExtractor(cfg.features)
    prep = load_split(data, extractor, cfg.on_error)
    if valid is not None:
        tr_rows, va_rows = list(range(len(prep.texts))), []
    else:
        tr_rows, va_rows = split_valid(len(prep.texts), cfg.valid_fraction, seed)
    labels = build_labels(cfg.mode, prep.texts)  # every row of --data, held-out ones included
    frames = [f.shape[0] for f in prep.feats]
    tgts, kept = encode_targets(cfg.mode, labels, prep, frames, cfg.subsample, cfg.on_error)
    by_row = dict(zip(kept, tgts))
    tr_rows = [i for i in tr_rows if i in by_row]
    va_rows = [i for i in va_rows if i in by_row]
    if not tr_rows:
        raise DataError(f"{data}: no usable training rows")
    norm = FeatureNorm(cfg.norm).fit([prep.feats[i] for i in tr_rows])
    train_set = make_examples(prep, tr_rows, by_row, norm)
    if valid is not None:
        vprep = load_split(valid, extractor, cfg.on_error)
        vt, vk = encode_targets(cfg.mode, labels, vprep, [f.shape[0] for f in vprep.feats], cfg.subsample, cfg.on_error)
        valid_set = make_examples(vprep, vk, dict(zip(vk, vt)), norm)
    else:
        valid_set = make_examples(prep, va_rows, by_row, norm)
    return Sets(train_set, valid_set, labels, norm, extractor.cfg.dim)


def fit(
    data: str | Path, cfg: SpeechConfig, train_cfg, out: str | Path, *, valid: str | Path | None = None
) -> tuple[SpeechPredictor, dict]:
    """:func:`train`, also returning the in-memory predictor of the trained network."""
    from lstmkit.data.batching import bucket_sampler
    from lstmkit.io import save_model
    from lstmkit.train import Trainer

    sets = prepare_sets(data, valid, cfg, train_cfg.seed)
    torch.manual_seed(train_cfg.seed)
    ncfg = net_config(cfg, sets.input_size, len(sets.labels))
    net = SpeechNet(ncfg)
    trainer = Trainer(
        net,
        train_cfg,
        sets.train,
        collate,
        make_loss(cfg.mode),
        valid_set=sets.valid or None,
        evaluate=make_evaluate(cfg, sets.labels),
        batch_sampler=bucket_sampler([len(e.feats) for e in sets.train], train_cfg.batch_size),
        out_dir=out,
    )
    result = trainer.fit()
    net = getattr(net, "module", net).cpu().eval()
    metrics = {
        "valid": {k: float(v) for k, v in (result.best_metrics or {}).items()},
        "n_train": len(sets.train),
        "n_valid": len(sets.valid),
        "epochs_run": result.epochs_run,
        "stopped": result.stopped,
    }
    config = {"speech": cfg, "net": ncfg, "train": train_cfg}
    save_model(
        out,
        task=TASK,
        config=config,
        model=net,
        transforms={"norm": sets.norm.to_json(), "labels": sets.labels.to_json()},
        metrics=metrics,
    )
    return SpeechPredictor(cfg, net, sets.norm, sets.labels), metrics


def net_config(cfg: SpeechConfig, input_size: int, n_outputs: int) -> SpeechNetConfig:
    return SpeechNetConfig(
        mode=cfg.mode,
        input_size=input_size,
        n_outputs=n_outputs,
        hidden_size=cfg.hidden_size,
        num_layers=cfg.num_layers,
        bidirectional=cfg.bidirectional,
        dropout=cfg.dropout,
        subsample=cfg.subsample,
        pooling=cfg.pooling,
        specaugment=cfg.specaugment,
        augment=cfg.augment,
    )


def make_evaluate(cfg: SpeechConfig, labels: Vocab):
    """Validation metrics for the trainer: accuracy (classify) or greedy CER/WER (ctc)."""

    def evaluate(model: torch.nn.Module, batches: list[SpeechBatch]) -> dict[str, float]:
        hyps, refs = [], []
        for b in batches:
            out, out_lengths = model(b.feats, b.lengths)
            hyps += decode_outputs(cfg.mode, out, out_lengths, labels, "greedy", 1)
            refs += targets_to_text(cfg.mode, b, labels)
        return score(cfg.mode, refs, hyps)

    return evaluate


def targets_to_text(mode: Mode, batch: SpeechBatch, labels: Vocab) -> list[str]:
    out = []
    for row, n in zip(batch.targets.tolist(), batch.target_lengths.tolist()):
        toks = labels.decode(row[:n])
        out.append(toks[0] if mode == "classify" else "".join(toks))
    return out


def decode_outputs(
    mode: Mode, out: torch.Tensor, lengths: torch.Tensor, labels: Vocab, decoder: Decoder, beam_width: int
) -> list[str]:
    """Network outputs → texts: argmax class, or CTC greedy / beam decoding per utterance."""
    from lstmkit.tasks.speech_decode import beam_decode, greedy_decode

    if mode == "classify":
        return labels.decode(out.argmax(-1).tolist())
    lp = out.detach().float().cpu().numpy()  # (B, T', V)
    texts = []
    for b, n in enumerate(lengths.tolist()):
        ids = greedy_decode(lp[b, :n]) if decoder == "greedy" else beam_decode(lp[b, :n], beam_width)
        texts.append(normalize_text("".join(labels.decode(ids))))
    return texts


def score(mode: Mode, refs: Sequence[str], hyps: Sequence[str]) -> dict[str, float]:
    """classify: accuracy; ctc: WER and CER (jiwer) and exact-match sentence accuracy."""
    acc = float(np.mean([r == h for r, h in zip(refs, hyps)])) if refs else 0.0
    if mode == "classify":
        return {"accuracy": acc}
    import jiwer

    refs_, hyps_ = [r or "<empty>" for r in refs], [h or "" for h in hyps]
    return {"wer": float(jiwer.wer(refs_, hyps_)), "cer": float(jiwer.cer(refs_, hyps_)), "sentence_accuracy": acc}


# ------------------------------------------------------------------------------------ loading
def load_predictor(folder: str | Path) -> SpeechPredictor:
    """The predictor of a saved speech model folder (``lstmkit.load`` dispatches here)."""
    from lstmkit.io import read_folder

    mf = read_folder(folder)
    if mf.task != TASK:
        raise LstmkitError(f"{folder}: a '{mf.task}' model, not a speech model")
    try:
        cfg = SpeechConfig(**mf.config["speech"])
        ncfg = SpeechNetConfig(**mf.config["net"])
        norm = FeatureNorm.from_json(mf.transforms["norm"])
        labels = Vocab.from_json(mf.transforms["labels"])
    except (KeyError, TypeError) as exc:
        raise ModelFolderError(f"{folder}/config.json: not a speech config ({exc})") from None
    return SpeechPredictor(cfg, mf.load_into(SpeechNet(ncfg)), norm, labels)


from lstmkit.tasks.speech_predict import SpeechPredictor  # noqa: E402  (the predictor lives beside)

__all__ = ["SpeechConfig", "SpeechPredictor", "SpeechBatch", "train", "load_predictor"]
