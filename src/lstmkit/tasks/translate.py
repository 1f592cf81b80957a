"""Machine translation: train, evaluate and use an LSTM encoder-decoder with attention.

Python API (the CLI ``lstmkit translate train|evaluate|predict`` calls exactly these)::

    from lstmkit.tasks.translate import TranslateConfig, train
    translator = train(TranslateConfig(), "train.de", "train.en", "val.de", "val.en", out_dir="mt")
    translator.translate_text(["Ein Hund rennt."], beam=5)      # -> ["A dog is running."]
    translator.evaluate_files("val.de", "val.en", beam=5)       # {"bleu": ..., "chrf": ..., ...}
    lstmkit.load("mt")                                          # -> Translator (via load_predictor)

Model selection and early stopping use validation BLEU (sacrebleu on detokenised text): the trainer's
``evaluate`` hook decodes the validation set (``valid_beam``) and returns ``{"bleu", "chrf"}``, watched
with ``monitor="bleu", mode="max"``.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor

from lstmkit.data.batching import bucket_sampler, pad_sequences
from lstmkit.data.parallel import (
    TextCodec,
    TokenizerMode,
    encode_pairs,
    encode_source,
    read_lines,
    read_parallel,
    train_codecs,
)
from lstmkit.errors import DataError, LstmkitError, ModelFolderError
from lstmkit.io import read_folder, save_model
from lstmkit.nn.attention import AttentionKind
from lstmkit.tasks.translate_decode import DecodeOptions, Hypothesis, decode
from lstmkit.tasks.translate_metrics import corpus_scores
from lstmkit.tasks.translate_model import Seq2Seq, Seq2SeqConfig, seq2seq_loss
from lstmkit.train import TrainConfig, Trainer

TASK = "translate"
log = logging.getLogger("lstmkit.translate")


@dataclass
class TranslateConfig:
    """Everything a translation run needs besides file names (saved in config.json under "translate").

    tokenizer: "bpe" (subwords, Hugging Face tokenizers) or "whitespace" (pre-tokenised words).
    vocab_size: BPE merges target size / word vocabulary size, per side (or shared).
    shared_vocab: one vocabulary for source and target.  lowercase: lowercase all text.
    max_length: sentences longer than this many tokens are truncated (with a warning).
    label_smoothing: epsilon of the smoothed cross-entropy.
    valid_beam: beam used to decode the validation set for BLEU during training (1 = greedy).
    alpha / max_ratio: length normalisation power and output length limit (x source length).
    """

    tokenizer: TokenizerMode = "bpe"
    vocab_size: int = 8000
    shared_vocab: bool = False
    lowercase: bool = False
    max_length: int = 100
    emb_size: int = 256
    hidden_size: int = 512
    num_layers: int = 1
    dropout: float = 0.3
    attention: AttentionKind = "general"
    tie_embeddings: bool = True
    label_smoothing: float = 0.1
    valid_beam: int = 1
    alpha: float = 1.0
    max_ratio: float = 2.0
    train: TrainConfig = field(default_factory=lambda: TrainConfig(monitor="bleu", mode="max", batch_size=64))

    def validate(self) -> None:
        checks = [
            (self.vocab_size >= 8, "vocab_size", "must be >= 8"),
            (self.max_length >= 1, "max_length", "must be >= 1"),
            (self.hidden_size >= 2 and self.hidden_size % 2 == 0, "hidden_size", "must be even and >= 2"),
            (self.emb_size >= 1 and self.num_layers >= 1, "emb_size/num_layers", "must be >= 1"),
            (0.0 <= self.dropout < 1.0, "dropout", "must be in [0, 1)"),
            (0.0 <= self.label_smoothing < 1.0, "label_smoothing", "must be in [0, 1)"),
            (self.valid_beam >= 1, "valid_beam", "must be >= 1"),
            (self.max_ratio > 0, "max_ratio", "must be > 0"),
            (self.tokenizer in ("bpe", "whitespace"), "tokenizer", "must be bpe or whitespace"),
            (self.attention in ("bahdanau", "general", "dot"), "attention", "must be bahdanau, general or dot"),
        ]
        for ok, name, msg in checks:
            if not ok:
                raise LstmkitError(f"translate config: {name} {msg} (got {getattr(self, name, '?')!r})")


class TranslateBatch(NamedTuple):
    """src (B, S) and src_len (B,); tgt_in (B, T) = <s> y; tgt_out (B, T) = y </s>; index (B,)."""

    src: Tensor
    src_len: Tensor
    tgt_in: Tensor
    tgt_out: Tensor
    index: Tensor


def collate(examples) -> TranslateBatch:
    """PairExamples -> a padded TranslateBatch (padding id 0)."""
    src, src_len = pad_sequences([torch.tensor(e.src, dtype=torch.long) for e in examples])  # (B, S)
    tgt, _ = pad_sequences([torch.tensor(e.tgt, dtype=torch.long) for e in examples])  # (B, T + 1)
    index = torch.tensor([e.index for e in examples], dtype=torch.long)
    return TranslateBatch(src, src_len, tgt[:, :-1], tgt[:, 1:], index)


def loss_fn(label_smoothing: float, pad_id: int = 0):
    """(model, batch) -> mean token cross-entropy (teacher forcing)."""

    def compute(model, batch: TranslateBatch) -> Tensor:
        logits = model(batch.src, batch.src_len, batch.tgt_in)  # (B, T, V)
        return seq2seq_loss(logits, batch.tgt_out, pad_id, label_smoothing)

    return compute


def bleu_evaluator(references: list[str], tgt_codec: TextCodec, opts: DecodeOptions, lowercase: bool):
    """Trainer hook: decode the validation batches, return {"bleu", "chrf"} against ``references``."""

    def evaluate(model, batches) -> dict[str, float]:
        net = getattr(model, "module", model)
        was_training = net.training
        net.eval()
        hyps = [""] * len(references)
        for batch in batches:
            for i, h in zip(batch.index.tolist(), decode(net, batch.src, batch.src_len, opts)):
                hyps[i] = tgt_codec.decode(h[0].ids)
        net.train(was_training)
        scores = corpus_scores(hyps, references, lowercase)
        return {"bleu": scores["bleu"], "chrf": scores["chrf"]}

    return evaluate


def decode_options(
    cfg: TranslateConfig,
    tgt_codec: TextCodec,
    beam: int = 5,
    nbest: int = 1,
    alpha: float | None = None,
    max_ratio: float | None = None,
) -> DecodeOptions:
    """Decoding options, defaults (alpha, max_ratio) from the config."""
    if beam < 1 or not 1 <= nbest <= beam:
        raise LstmkitError(f"beam must be >= 1 and 1 <= nbest <= beam (got beam={beam}, nbest={nbest})")
    return DecodeOptions(
        beam=beam,
        nbest=nbest,
        alpha=cfg.alpha if alpha is None else alpha,
        max_ratio=cfg.max_ratio if max_ratio is None else max_ratio,
        bos_id=tgt_codec.bos_id,
        eos_id=tgt_codec.eos_id,
    )


class Translation(NamedTuple):
    """One output: detokenised text, target tokens, normalised score, log-probability,
    attention (len(tokens) + 1, len(source_tokens)) (last row: </s>, if produced)."""

    text: str
    tokens: list[str]
    score: float
    logprob: float
    attention: Tensor
    source_tokens: list[str]


class Translator:
    """A trained translator (what :func:`lstmkit.load` returns for a translate folder)."""

    def __init__(
        self,
        model: Seq2Seq,
        src_codec: TextCodec,
        tgt_codec: TextCodec,
        cfg: TranslateConfig,
        device: str = "cpu",
        metrics: dict | None = None,
        sample: str = "",
    ) -> None:
        self.model = model.to(device).eval()
        self.src_codec, self.tgt_codec, self.cfg, self.device = src_codec, tgt_codec, cfg, device
        self.metrics = dict(metrics or {})  # validation metrics of the saved model
        self.sample = sample  # a source sentence for `lstmkit inspect`

    def options(
        self, beam: int = 5, nbest: int = 1, alpha: float | None = None, max_ratio: float | None = None
    ) -> DecodeOptions:
        return decode_options(self.cfg, self.tgt_codec, beam, nbest, alpha, max_ratio)

    def translate(
        self,
        sentences: list[str],
        beam: int = 5,
        nbest: int = 1,
        alpha: float | None = None,
        max_ratio: float | None = None,
        batch_size: int = 64,
    ) -> list[list[Translation]]:
        """n-best translations (best first) for each sentence, with scores and attention weights."""
        opts = self.options(beam, nbest, alpha, max_ratio)
        pieces = [encode_source(self.src_codec, s, self.cfg.max_length) for s in sentences]
        encoded = [ids for ids, _ in pieces]
        cut = sum(was_cut for _, was_cut in pieces)
        if cut:
            log.warning("%d sentence(s) longer than max_length %d tokens were truncated", cut, self.cfg.max_length)
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))  # similar lengths together
        out: list[list[Translation]] = [[] for _ in sentences]
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            src, src_len = pad_sequences([torch.tensor(encoded[i], dtype=torch.long) for i in chunk])  # (B, S)
            hyps = decode(self.model, src.to(self.device), src_len.to(self.device), opts)
            for i, h in zip(chunk, hyps):
                out[i] = [self._translation(x, encoded[i]) for x in h]
        return out

    def _translation(self, h: Hypothesis, src_ids: list[int]) -> Translation:
        return Translation(
            self.tgt_codec.decode(h.ids),
            self.tgt_codec.id_tokens(h.ids),
            h.score,
            h.logprob,
            h.attention,
            self.src_codec.id_tokens(src_ids),
        )

    def translate_text(self, sentences: list[str], beam: int = 5, **kw) -> list[str]:
        """The best translation of each sentence, as text."""
        return [n[0].text for n in self.translate(sentences, beam=beam, **kw)]

    predict = translate_text

    def evaluate(self, sources: list[str], references: list[str], beam: int = 5, **kw) -> dict:
        """Corpus BLEU and chrF (sacrebleu, detokenised) with their signatures; ``kw`` as :meth:`translate`."""
        return corpus_scores(
            self.translate_text(sources, beam=beam, **kw), references, self.cfg.lowercase, signatures=True
        )

    def evaluate_files(self, source: str | Path, target: str | Path, beam: int = 5, **kw) -> dict:
        """:meth:`evaluate` on two line-aligned files (pairs with an empty side are skipped and counted)."""
        data = read_parallel(source, target)
        result = self.evaluate(data.sources, data.targets, beam=beam, **kw)
        result.update(sentences=len(data), skipped_empty=data.skipped_empty, beam=beam)
        return result

    # ---------------------------------------------------------------- lstmkit inspect
    num_directions = 2  # the encoder is bidirectional

    def inspect_sample(self, data: str | None = None, index: int = 0) -> str:
        """One source sentence: line ``index`` (0-based, non-empty lines) of ``data``, or the saved sample."""
        if data is None:
            return self.sample
        lines = [s.strip() for s in read_lines(data) if s.strip()]
        if not 0 <= index < len(lines):
            raise DataError(f"{data}: --index {index} out of range ({len(lines)} non-empty lines)")
        return lines[index]

    def step_labels(self, sample: str) -> list[str]:
        """The source tokens the encoder steps over."""
        return self.src_codec.id_tokens(encode_source(self.src_codec, sample, self.cfg.max_length)[0])

    def trace_gates(self, sample: str):
        """Encoder gate activations for one source sentence (for ``lstmkit inspect``):
        list of Gates (i, f, g, o, c), each (1, S, H/2), index layer * 2 + direction."""
        ids = encode_source(self.src_codec, sample, self.cfg.max_length)[0]
        src = torch.tensor([ids], dtype=torch.long, device=self.device)  # (1, S)
        with torch.no_grad():
            x = self.model.src_emb(src)  # (1, S, E)
            _, _, gates = self.model.encoder(x, lengths=torch.tensor([len(ids)]), return_gates=True)
        return gates


# ------------------------------------------------------------------------------------------ training
def _read_data(source, target, valid_source, valid_target):
    if bool(valid_source) != bool(valid_target):
        raise LstmkitError("--valid-source and --valid-target must be given together")
    data = read_parallel(source, target)
    valid = read_parallel(valid_source, valid_target) if valid_source else None
    return data, valid


def build_model(cfg: TranslateConfig, src_codec: TextCodec, tgt_codec: TextCodec) -> Seq2Seq:
    mcfg = Seq2SeqConfig(
        len(src_codec),
        len(tgt_codec),
        cfg.emb_size,
        cfg.hidden_size,
        cfg.num_layers,
        cfg.dropout,
        cfg.attention,
        cfg.tie_embeddings,
        src_codec.pad_id,
    )
    return Seq2Seq(mcfg)


def train(
    cfg: TranslateConfig, source, target, valid_source=None, valid_target=None, out_dir: str | Path | None = None
) -> Translator:
    """Learn tokenisers and a model; with ``out_dir`` save the model folder there. Returns the Translator."""
    cfg.validate()
    data, valid = _read_data(source, target, valid_source, valid_target)
    src_codec, tgt_codec = train_codecs(data, cfg.tokenizer, cfg.vocab_size, cfg.shared_vocab, cfg.lowercase)
    train_set = encode_pairs(data, src_codec, tgt_codec, cfg.max_length, name=str(source))
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg, src_codec, tgt_codec)
    tcfg = cfg.train
    if valid is None and tcfg.monitor in ("bleu", "chrf"):
        tcfg = dataclasses.replace(tcfg, monitor="train_loss", mode="min")
    valid_set, evaluate = None, None
    if valid is not None:
        valid_set = encode_pairs(valid, src_codec, tgt_codec, cfg.max_length, name=str(valid_source))
        opts = decode_options(cfg, tgt_codec, beam=cfg.valid_beam)
        evaluate = bleu_evaluator(valid.targets, tgt_codec, opts, cfg.lowercase)
    trainer = Trainer(
        model,
        tcfg,
        train_set,
        collate,
        loss_fn(cfg.label_smoothing, src_codec.pad_id),
        valid_set=valid_set,
        evaluate=evaluate,
        batch_sampler=bucket_sampler([len(e.src) for e in train_set], tcfg.batch_size),
        out_dir=out_dir,
    )
    result = trainer.fit()
    sample = (valid or data).sources[0]
    model = getattr(model, "module", model).cpu().eval()
    if out_dir is not None:
        save_model(
            out_dir,
            TASK,
            {"translate": cfg, "model": model.cfg},
            model,
            transforms=_transforms(src_codec, tgt_codec, cfg.shared_vocab, sample),
            metrics={k: float(v) for k, v in result.best_metrics.items()},
        )
    return Translator(model, src_codec, tgt_codec, cfg, metrics=result.best_metrics, sample=sample)


def _transforms(src_codec: TextCodec, tgt_codec: TextCodec, shared: bool, sample: str) -> dict:
    out = {"source_tokenizer": src_codec.to_json(), "inspect_sample": {"source": sample}}
    if not shared:
        out["target_tokenizer"] = tgt_codec.to_json()
    return out


# ------------------------------------------------------------------------------------------ loading
def _config_from_dict(d: dict) -> TranslateConfig:
    fields = {f.name for f in dataclasses.fields(TranslateConfig)} - {"train"}
    kwargs = {k: v for k, v in d.items() if k in fields}
    tfields = {f.name for f in dataclasses.fields(TrainConfig)}
    return TranslateConfig(**kwargs, train=TrainConfig(**{k: v for k, v in d.get("train", {}).items() if k in tfields}))


def load_predictor(folder: str | Path, device: str = "cpu") -> Translator:
    """Rebuild the Translator saved in ``folder`` (safetensors + JSON only, nothing unpickled)."""
    mf = read_folder(folder)
    try:
        cfg = _config_from_dict(mf.config["translate"])
        mcfg = Seq2SeqConfig(**mf.config["model"])
        src_codec = TextCodec.from_json(mf.transforms["source_tokenizer"])
        tgt_json = mf.transforms.get("target_tokenizer")
        tgt_codec = src_codec if tgt_json is None else TextCodec.from_json(tgt_json)
        model = Seq2Seq(mcfg)
        model.load_state_dict(mf.state_dict)
        sample = str(mf.transforms.get("inspect_sample", {}).get("source", ""))
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise ModelFolderError(f"{folder}: not a usable translate model ({type(err).__name__}: {err})") from None
    return Translator(model, src_codec, tgt_codec, cfg, device, metrics=mf.metrics, sample=sample)
