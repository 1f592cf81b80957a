"""``tag`` on the task contract: prepare (read, resolve the scheme, fit the encoder), build, loss, metrics.

Pipeline::

    CoNLL / CoNLL-U file ──► Sentence(tokens, tags) ──► scheme detected (IOB1 / IOB2 / IOBES / none)
        ──► tags converted to the model's scheme (IOBES by default) ──► TagEncoder (words, chars, tags;
        training part only) ──► length-bucketed TagBatch ──► BiLSTMTagger ──► the trainer
        ──► model folder: config.json, model.safetensors, words.json, chars.json, tags.json, sample.json

Predictions come back in the input's scheme. The best epoch has the best validation entity F1 (chunk
tags) or token accuracy (plain labels): ``--monitor auto`` is resolved here into the saved config.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lstmkit.data.batching import bucket_sampler
from lstmkit.data.conll import Scheme, Sentence, check_scheme, detect_scheme
from lstmkit.data.splits import holdout
from lstmkit.errors import DataError
from lstmkit.tasks.base import Prepared, Task
from lstmkit.tasks.tag.config import AUTO, SPEC, TagConfig
from lstmkit.tasks.tag.data import (
    TagEncoder,
    check_known_tags,
    collate,
    cut_long,
    model_tags,
    read_data,
    tag_set,
    warn_long,
)
from lstmkit.tasks.tag.metrics import tag_metrics
from lstmkit.tasks.tag.model import BiLSTMTagger
from lstmkit.tasks.tag.predict import TagPredictor


class Tagging(Task[TagConfig]):
    """CRF negative log-likelihood (or token cross-entropy); the best epoch by validation F1 / accuracy."""

    spec = SPEC
    Predictor = TagPredictor

    def check(self, data: Any, valid: Any = None) -> None:
        emb = self.config.embeddings
        if emb is not None and not Path(emb).is_file():
            raise DataError(f"{emb}: embeddings file not found" + (" (a folder)" if Path(emb).is_dir() else ""))
        sents, source = read_data(data, self.config)
        scheme = self._scheme(sents, source)
        if valid is not None:
            vsents, vsource = read_data(valid, self.config, "valid")
            check_scheme(vsents, scheme, vsource)

    def _scheme(self, sents: list[Sentence], source: str) -> Scheme:
        """The data's scheme: detected (``auto``) or checked."""
        if self.config.scheme == AUTO:
            return detect_scheme(sents, source)
        check_scheme(sents, self.config.scheme, source)  # type: ignore[arg-type]
        return self.config.scheme  # type: ignore[return-value]

    def _split(self, data: Any, valid: Any) -> tuple[list[Sentence], str, list[Sentence], str, Scheme]:
        sents, source = read_data(data, self.config)
        scheme = self._scheme(sents, source)
        if valid is not None:
            vsents, vsource = read_data(valid, self.config, "valid")
            check_scheme(vsents, scheme, vsource)
            return sents, source, vsents, vsource, scheme
        tr, va = holdout(len(sents), self.config.valid_fraction, self.config.train.seed)
        return [sents[i] for i in tr], source, [sents[i] for i in va], source, scheme

    def _resolve(self, scheme: Scheme, has_valid: bool) -> None:
        """The saved config names the data's scheme and the monitor (no ``auto`` left)."""
        cfg = self.config.build(scheme=scheme)
        if cfg.train.monitor == AUTO:
            if has_valid:
                cfg = cfg.build(monitor="f1" if scheme != "none" else "accuracy", monitor_mode="max")
            else:  # the trainer watches the training loss
                cfg = cfg.build(monitor="valid_loss", monitor_mode="min")
        self.config = cfg

    def prepare(self, data: Any, valid: Any = None) -> Prepared:
        sents, source, vsents, vsource, scheme = self._split(data, valid)
        self._resolve(scheme, bool(vsents))
        cfg = self.config
        n, vn = len(sents), len(vsents)
        (sents, long), (vsents, vlong) = cut_long(sents, cfg.max_len), cut_long(vsents, cfg.max_len)
        if valid is None:  # one file: one warning
            warn_long(sorted(long + vlong, key=lambda s: s.lines[0]), n + vn, cfg.max_len, source)
        else:
            warn_long(long, n, cfg.max_len, source)
            warn_long(vlong, vn, cfg.max_len, vsource)
        model_scheme: Scheme = cfg.model_scheme if scheme != "none" else "none"
        train_tags, valid_tags = model_tags(sents, model_scheme), model_tags(vsents, model_scheme)
        enc = TagEncoder.build(
            [s.tokens for s in sents],
            tag_set(train_tags, model_scheme),
            cfg.lowercase,
            cfg.zeros,
            cfg.min_freq,
            cfg.max_word_len,
        )
        self.tags, self.scheme = enc.tags, scheme
        from_file = isinstance(data if valid is None else valid, (str, os.PathLike))
        check_known_tags(vsents, enc.tags, scheme != "none", vsource, from_file, "the training data has")
        train_set = enc.examples(sents, train_tags, source)
        valid_set = sorted(enc.examples(vsents, valid_tags, vsource), key=lambda e: len(e.words))  # less padding
        if cfg.embeddings:
            from lstmkit.data.text import load_embeddings

            self.embeddings = load_embeddings(cfg.embeddings, enc.words, seed=cfg.train.seed)
            bad = (~torch.isfinite(self.embeddings.weight)).any(dim=1).nonzero()  # (n, 1): e.g. 1e39 in float32
            if len(bad):
                word = enc.words.tokens[int(bad[0, 0])]
                raise DataError(
                    f"{cfg.embeddings}: the vector for {word[:30]!r} holds a value beyond float32 (|x| > 3.4e38) "
                    "or not a number"
                )
            self.config = cfg.build(embed_size=int(self.embeddings.weight.shape[1]))
        return Prepared(
            train=train_set,
            valid=valid_set or None,
            collate=collate,
            dims=enc.dims(model_scheme),
            transforms={**enc.transforms(), "sample": {"tokens": (vsents or sents)[0].tokens}},
            batch_sampler=bucket_sampler([len(e.words) for e in train_set], cfg.train.batch_size, shuffle=True),
            valid_data=vsents or None,
        )

    def build(self, dims: Mapping[str, Any]) -> nn.Module:
        return BiLSTMTagger(self.config, dims)

    def init(self, model: nn.Module, prep: Prepared) -> None:
        emb = getattr(self, "embeddings", None)
        if emb is not None:
            assert isinstance(model, BiLSTMTagger)
            model.words.weight.data.copy_(emb.weight)
            model.words.weight.requires_grad_(not self.config.freeze_embeddings)

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        return model(batch)  # BiLSTMTagger.forward is its loss (a DDP wrapper passes the call on)

    def metrics(self, model: nn.Module, batches: list[Any]) -> dict[str, float]:
        """``f1`` (chunk tags) and ``accuracy`` of the Viterbi (or argmax) paths, in the model's scheme."""
        assert isinstance(model, BiLSTMTagger)
        gold, pred = [], []
        for b in batches:
            paths = model.decode(b).cpu()
            for row_g, row_p, n in zip(b.tags.cpu().tolist(), paths.tolist(), b.lengths.tolist()):
                gold.append([self.tags[i] for i in row_g[:n]])
                pred.append([self.tags[i] for i in row_p[:n]])
        m = tag_metrics(gold, pred, self.scheme)
        return {k: m[k] for k in ("f1", "accuracy") if k in m}


TASK = Tagging
