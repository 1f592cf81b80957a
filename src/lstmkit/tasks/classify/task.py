"""``classify`` on the task contract: prepare (read, fit the encoder), build, loss, metrics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from lstmkit.data.batching import bucket_sampler
from lstmkit.data.labelled import parse_numbers
from lstmkit.data.splits import holdout
from lstmkit.tasks.base import Prepared, Task
from lstmkit.tasks.classify.config import SPEC, ClassifyConfig
from lstmkit.tasks.classify.data import Encoder, at, check_labels, collate, read_rows
from lstmkit.tasks.classify.metrics import classification_metrics
from lstmkit.tasks.classify.model import ClassifyBatch, SequenceClassifier
from lstmkit.tasks.classify.predict import ClassifyPredictor


class Classify(Task[ClassifyConfig]):
    """Cross-entropy on pooled (Bi)LSTM states; the best epoch by validation accuracy."""

    spec = SPEC
    Predictor = ClassifyPredictor

    def check(self, data: Any, valid: Any = None) -> None:
        """Read the files; at least two labels; validation labels seen in training; numbers parse.
        A later call (``train --dry-run --test F``) checks F's labels against the training data's."""
        cfg = self.config
        rows, source = read_rows(data, cfg)
        vrows, vsource = read_rows(valid, cfg, "valid") if valid is not None else ([], source)
        known = getattr(self, "checked_labels", None)
        if known is None:
            check_labels(rows, source, vrows, vsource)
            self.checked_labels = list(rows)
        else:  # the test file of this run: every label must be one the model will know
            check_labels(known, "data", rows, source)
        if cfg.input == "numeric":
            for rs, src in ((rows, source), (vrows, vsource)):
                for r in rs:
                    parse_numbers(r.text, at(src, r.line))

    def prepare(self, data: Any, valid: Any = None) -> Prepared:
        cfg = self.config
        rows, source = read_rows(data, cfg)
        labels = None
        if valid is not None:
            vrows, vsource = read_rows(valid, cfg, "valid")
            check_labels(rows, source, vrows, vsource)
        else:
            labels = {r.label for r in rows}  # a rare label held out for validation stays a class
            tr, va = holdout(len(rows), cfg.valid_fraction, cfg.train.seed)
            rows, vrows, vsource = [rows[i] for i in tr], [rows[i] for i in va], source
        enc = Encoder.fit(rows, cfg, source, labels)
        self.num_classes = len(enc.labels)
        train_set = enc.examples(rows, source, warn=False)
        (cut, longest), enc.cut = enc.cut, (0, 0)
        valid_set = sorted(enc.examples(vrows, vsource, warn=False), key=lambda e: len(e[0])) if vrows else None
        if vsource == source:  # one warning for the file, whichever part a long text fell into
            enc.warn_cut(source, cut + enc.cut[0], max(longest, enc.cut[1]))
        else:
            enc.warn_cut(source, cut, longest)
            enc.warn_cut(vsource, *enc.cut)
        if cfg.embeddings and cfg.input == "text":
            from lstmkit.data.text import load_embeddings

            assert enc.vocab is not None
            self.embeddings = load_embeddings(cfg.embeddings, enc.vocab, seed=cfg.train.seed)
            self.config = cfg.build(embed_size=int(self.embeddings.weight.shape[1]))
        sample = (vrows or rows)[0].text
        return Prepared(
            train=train_set,
            valid=valid_set,
            collate=collate,
            dims=enc.dims(),
            transforms={**enc.transforms(), "sample": {"text": sample}},
            batch_sampler=bucket_sampler([len(e[0]) for e in train_set], cfg.train.batch_size, shuffle=True),
            valid_data=[(r.text, r.label) for r in vrows] if vrows else None,
        )

    def report(self, predictor: Any, prep: Prepared, result: Any) -> dict[str, Any]:
        """The validation data's full evaluation (texts cut to --max-len were warned about already)."""
        predictor.encoder.quiet_limits = True
        try:
            return super().report(predictor, prep, result)
        finally:
            predictor.encoder.quiet_limits = False

    def build(self, dims: Mapping[str, Any]) -> nn.Module:
        return SequenceClassifier(self.config, dims)

    def init(self, model: nn.Module, prep: Prepared) -> None:
        emb = getattr(self, "embeddings", None)
        if emb is not None:
            assert isinstance(model, SequenceClassifier) and isinstance(model.embed, nn.Embedding)
            model.embed.weight.data.copy_(emb.weight)
            model.embed.weight.requires_grad_(not self.config.freeze_embeddings)

    def loss(self, model: nn.Module, batch: ClassifyBatch) -> torch.Tensor:
        return nn.functional.cross_entropy(model(batch.x, batch.lengths), batch.y)

    def metrics(self, model: nn.Module, batches: list[ClassifyBatch]) -> dict[str, float]:
        ys, ps = [], []
        for b in batches:
            ps.append(model(b.x, b.lengths).argmax(-1).cpu())
            ys.append(b.y.cpu())
        m = classification_metrics(torch.cat(ys).numpy(), torch.cat(ps).numpy(), n_classes=self.num_classes)
        return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"]}


TASK = Classify
