"""``translate`` on the task contract: prepare (read pairs, learn the codecs), build, loss, BLEU per epoch.

Model selection and early stopping use validation BLEU (sacrebleu on detokenised text): :meth:`metrics`
decodes the validation batches with ``--valid-beam`` and returns ``{"bleu", "chrf"}``, watched with
``--monitor bleu --monitor-mode max`` (the defaults).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import torch
from torch import nn

from lstmkit.data.batching import bucket_sampler
from lstmkit.data.parallel import TextCodec, encode_pairs, train_codecs
from lstmkit.data.splits import holdout
from lstmkit.tasks.base import Prepared, Task
from lstmkit.tasks.translate.config import SPEC, TranslateConfig
from lstmkit.tasks.translate.data import collate, read_pairs
from lstmkit.tasks.translate.decode import DecodeOptions, decode
from lstmkit.tasks.translate.metrics import corpus_scores
from lstmkit.tasks.translate.model import Seq2Seq, TranslateBatch, seq2seq_loss
from lstmkit.tasks.translate.predict import TranslatePredictor


class Translate(Task[TranslateConfig]):
    """Label-smoothed cross-entropy with teacher forcing; the best epoch by validation BLEU."""

    spec = SPEC
    report_cost = 6.0  # beam-5 BLEU of the validation set against the epochs' greedy BLEU
    Predictor = TranslatePredictor

    def check(self, data: Any, valid: Any = None) -> None:
        read_pairs(data)
        if valid is not None:
            read_pairs(valid, "valid")

    def prepare(self, data: Any, valid: Any = None) -> Prepared:
        cfg = self.config
        pairs, source = read_pairs(data)
        if valid is not None:
            vpairs, vsource = read_pairs(valid, "valid")
        else:
            tr, va = holdout(len(pairs), cfg.valid_fraction, cfg.train.seed)
            pairs, vpairs, vsource = pairs.subset(tr), pairs.subset(va), f"{source} (held out)"
        src_codec, tgt_codec = train_codecs(pairs, cfg.tokenizer, cfg.vocab_size, cfg.shared_vocab, cfg.lowercase)
        train_set = encode_pairs(pairs, src_codec, tgt_codec, cfg.max_length, name=source)
        valid_set = None
        if len(vpairs):
            encoded = encode_pairs(vpairs, src_codec, tgt_codec, cfg.max_length, name=vsource)
            valid_set = sorted(encoded, key=lambda e: len(e.src))  # less padding; e.position finds the reference
        self.references = list(vpairs.targets)
        self.tgt_codec = tgt_codec
        transforms: dict[str, Any] = {
            "source_tokenizer": src_codec.to_json(),
            "sample": {"source": (vpairs.sources or pairs.sources)[0]},
        }
        if not cfg.shared_vocab:
            transforms["target_tokenizer"] = tgt_codec.to_json()
        return Prepared(
            train=train_set,
            valid=valid_set,
            collate=collate,
            dims={"src_vocab": len(src_codec), "tgt_vocab": len(tgt_codec), "pad_id": src_codec.pad_id},
            transforms=transforms,
            batch_sampler=bucket_sampler([len(e.src) for e in train_set], cfg.train.batch_size),
            valid_data=vpairs if len(vpairs) else None,
        )

    def report(self, predictor: Any, prep: Prepared, result: Any) -> dict[str, Any]:
        """The full evaluation of the validation pairs (sentences over ``--max-length`` were warned about
        when they were read)."""
        predictor.warn_limits = False
        try:
            return super().report(predictor, prep, result)
        finally:
            predictor.warn_limits = True

    def build(self, dims: Mapping[str, Any]) -> nn.Module:
        return Seq2Seq(self.config, dims)

    def loss(self, model: nn.Module, batch: TranslateBatch) -> torch.Tensor:
        logits = model(batch.src, batch.src_len, batch.tgt_in)  # (B, T, V)
        return seq2seq_loss(logits, batch.tgt_out, 0, self.config.label_smoothing)  # <pad> is id 0 in every codec

    def metrics(self, model: nn.Module, batches: list[TranslateBatch]) -> dict[str, float]:
        """Corpus BLEU and chrF of the validation set decoded with ``--valid-beam``."""
        net = cast(Seq2Seq, getattr(model, "module", model))
        codec: TextCodec = self.tgt_codec
        cfg = self.config
        opts = DecodeOptions(
            beam=cfg.valid_beam, alpha=cfg.alpha, max_ratio=cfg.max_ratio, bos_id=codec.bos_id, eos_id=codec.eos_id
        )
        hyps = [""] * len(self.references)
        for batch in batches:
            for i, h in zip(batch.position.tolist(), decode(net, batch.src, batch.src_len, opts)):
                hyps[i] = codec.decode(h[0].ids)
        scores = corpus_scores(hyps, self.references, cfg.lowercase)
        return {"bleu": scores["bleu"], "chrf": scores["chrf"]}


TASK = Translate
