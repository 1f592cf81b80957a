"""``speech`` on the task contract: prepare (featurise, labels, normalisation), build, loss, metrics.

Modes: ``classify`` (one label per clip: cross-entropy on pooled LSTM states) and ``ctc`` (the
transcript as characters: CTC loss, ``torch.nn.functional.ctc_loss``, blank id 0; greedy or prefix
beam decoding from :mod:`lstmkit.tasks.speech.decode`).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lstmkit.data.audio import FeatureExtractor, FeatureNorm, audio_info, warn_cut
from lstmkit.data.batching import bucket_sampler
from lstmkit.data.splits import holdout
from lstmkit.data.vocab import Vocab
from lstmkit.errors import DataError, warn
from lstmkit.tasks import base
from lstmkit.tasks.base import Prepared, Task
from lstmkit.tasks.speech.config import METRICS, SPEC, SpeechConfig
from lstmkit.tasks.speech.data import (
    SpeechBatch,
    build_labels,
    collate,
    encode_targets,
    feature_config,
    featurize,
    make_examples,
    read_entries,
)
from lstmkit.tasks.speech.decode import decode_outputs
from lstmkit.tasks.speech.metrics import score
from lstmkit.tasks.speech.model import SpeechNet
from lstmkit.tasks.speech.predict import SpeechPredictor


class Speech(Task[SpeechConfig]):
    """Cross-entropy (classify) or CTC (ctc) on (Bi)LSTM outputs over stacked acoustic frames."""

    spec = SPEC
    Predictor = SpeechPredictor

    def check(self, data: Any, valid: Any = None) -> None:
        """Manifests readable, with ``path`` and ``text``; every audio file present and readable by its
        header (``--on-error skip``: a warning instead); clips over ``--max-seconds`` counted."""
        cfg = self.config
        for source, what in ((data, "data"), (valid, "valid")):
            if source is None:
                continue
            entries, _ = read_entries(source, what)
            bad, long = [], []
            for e in entries:
                try:
                    sr, frames = audio_info(e.path)
                except DataError as err:
                    bad.append(f"{e.source}: {err}")
                    continue
                if frames > cfg.max_seconds * sr:
                    long.append((frames / sr, e.source))
            if bad and cfg.on_error == "fail":
                raise DataError(bad[0])
            if bad:
                warn(f"{bad[0]} (and {len(bad) - 1} more: they will be skipped)")
            if long:
                warn_cut(len(long), max(long), cfg.max_seconds)

    def prepare(self, data: Any, valid: Any = None) -> Prepared:
        self.resolve_monitor_mode()
        cfg = self.config
        extractor = FeatureExtractor(feature_config(cfg.audio))
        entries, source = read_entries(data)
        rows = featurize(entries, extractor, cfg.on_error, cfg.max_seconds)
        n = len(rows.texts)
        tr, held = (list(range(n)), []) if valid is not None else holdout(n, cfg.valid_fraction, cfg.train.seed)
        labels = self.labels = build_labels(cfg.mode, [rows.texts[i] for i in tr])
        tr_targets = encode_targets(cfg.mode, labels, rows, tr, cfg.subsample, cfg.on_error)
        if not tr_targets:
            raise DataError(f"{source}: no usable training rows")
        norm = FeatureNorm(cfg.audio.norm).fit([rows.feats[i] for i in tr_targets])
        if valid is not None:
            vrows = featurize(read_entries(valid, "valid")[0], extractor, cfg.on_error, cfg.max_seconds)
            va_targets = encode_targets(cfg.mode, labels, vrows, range(len(vrows.texts)), cfg.subsample, cfg.on_error)
        else:  # a held-out row with a label the training part lacks is the split's doing: skipped
            vrows = rows
            va_targets = encode_targets(cfg.mode, labels, rows, held, cfg.subsample, cfg.on_error, on_unknown="skip")
        train_set = make_examples(rows, tr_targets, norm)
        valid_set = sorted(make_examples(vrows, va_targets, norm), key=lambda e: len(e.feats))
        return Prepared(
            train=train_set,
            valid=valid_set or None,
            collate=collate,
            dims={"input_size": extractor.cfg.dim, "num_outputs": len(labels)},
            transforms={"norm": norm.to_json(), "labels": labels.to_json()},
            batch_sampler=bucket_sampler([len(e.feats) for e in train_set], cfg.train.batch_size),
            valid_data=[vrows.entries[i] for i in va_targets] or None,
        )

    def resolve_monitor_mode(self) -> None:
        """``--monitor-mode`` follows ``--monitor``: max for accuracies, min for losses and error rates."""
        cfg = self.config
        larger = METRICS[cfg.mode].get(cfg.train.monitor, False)
        want = "max" if larger else "min"
        if cfg.train.monitor_mode != want:
            print(
                f"note: --monitor {cfg.train.monitor} is better {'larger' if larger else 'smaller'}: "
                f"--monitor-mode {want}",
                file=sys.stderr,
            )
            self.config = cfg.build(monitor_mode=want)

    def build(self, dims: Mapping[str, Any]) -> nn.Module:
        return SpeechNet(self.config, dims)

    def loss(self, model: nn.Module, batch: SpeechBatch) -> torch.Tensor:
        """classify: cross-entropy; ctc: CTC loss (blank 0), each utterance's loss divided by its
        target length, then the batch mean (``reduction="mean"``)."""
        out, out_lengths = model(batch.feats, batch.lengths)
        if self.config.mode == "classify":
            return F.cross_entropy(out.float(), batch.targets[:, 0])
        log_probs = out.float().transpose(0, 1)  # (B, T', V) -> (T', B, V)
        return F.ctc_loss(
            log_probs, batch.targets, out_lengths, batch.target_lengths, blank=0, reduction="mean", zero_infinity=True
        )

    def metrics(self, model: nn.Module, batches: list[SpeechBatch]) -> dict[str, float]:
        """accuracy (classify) or greedy WER / CER / sentence accuracy (ctc) of the validation set."""
        labels: Vocab = self.labels  # set by prepare
        hyps, refs = [], []
        for b in batches:
            out, out_lengths = model(b.feats, b.lengths)
            hyps += decode_outputs(self.config.mode, out, out_lengths, labels, "greedy", 1)
            refs += targets_to_text(self.config.mode, b, labels)
        return score(self.config.mode, refs, hyps)

    def report(self, predictor: base.Predictor[SpeechConfig], prep: Prepared, result: Any) -> dict[str, Any]:
        """The full evaluation of the validation rows, and how many rows trained the model (clips over
        ``--max-seconds`` were warned about when they were read)."""
        speech = predictor if isinstance(predictor, SpeechPredictor) else None
        if speech is not None:
            speech.warn_limits = False
        try:
            return {**super().report(predictor, prep, result), "n_train": len(prep.train)}
        finally:
            if speech is not None:
                speech.warn_limits = True


def targets_to_text(mode: str, batch: SpeechBatch, labels: Vocab) -> list[str]:
    """The padded targets of a batch back to label / transcript strings."""
    out = []
    for row, n in zip(batch.targets.tolist(), batch.target_lengths.tolist()):
        toks = labels.decode(row[:n])
        out.append(toks[0] if mode == "classify" else "".join(toks))
    return out


TASK = Speech
